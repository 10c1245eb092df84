package alarm_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/alarm"
	"github.com/kiln-serve/kiln/internal/metrics"
	"github.com/kiln-serve/kiln/internal/server"
)

// BenchmarkEngineTick measures one evaluation round of the engine over N
// alarms on Kiln's own metrics, as the server runs it five times a second:
// 8 fleets with ten minutes of traffic, alarms on counts, averages and p99
// latencies of endpoints and variants. It reports ns/alarm, the cost of
// one alarm per round. With periods under a minute every alarm is
// evaluated on every round; with 60-second periods only when a period
// completes.
func BenchmarkEngineTick(b *testing.B) {
	for _, period := range []int{1, 60} {
		for _, n := range []int{1, 100, 2000} {
			b.Run(fmt.Sprintf("period=%d/alarms=%d", period, n), func(b *testing.B) {
				benchTick(b, period, n)
			})
		}
	}
}

func benchTick(b *testing.B, period, n int) {
	clk := clockwork.NewFakeClockAt(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	st := metrics.New(clk, prometheus.NewRegistry())
	var series []*metrics.Series
	for e := range 4 {
		for _, v := range []string{"blue", "green"} {
			series = append(series, st.Series(fmt.Sprintf("ep%d", e), v, "cfg"))
		}
	}
	for sec := range 600 {
		for i, s := range series {
			for r := range 20 {
				status := 200
				if (sec+r+i)%50 == 0 {
					status = 500
				}
				s.Record(metrics.Sample{Status: status, ModelLatency: time.Duration(1+r) * time.Millisecond, OverheadLatency: 100 * time.Microsecond, Instances: 2, Time: clk.Now()})
			}
		}
		clk.Advance(time.Second)
	}
	stats := []struct{ metric, stat, ext string }{
		{"Invocations", "Sum", ""}, {"ModelLatency", "", "p99"}, {"Invocation5XXErrors", "Average", ""}, {"ModelLatency", "Average", ""},
	}
	alarms := make([]kiln.Alarm, n)
	for i := range alarms {
		s := stats[i%len(stats)]
		dims := []kiln.Dimension{{Name: "EndpointName", Value: fmt.Sprintf("ep%d", i%4)}}
		if i%2 == 1 {
			dims = append(dims, kiln.Dimension{Name: "VariantName", Value: "green"})
		}
		alarms[i] = kiln.Alarm{
			AlarmName: fmt.Sprintf("a%d", i), Namespace: "AWS/SageMaker", MetricName: s.metric, Dimensions: dims,
			Statistic: s.stat, ExtendedStatistic: s.ext, Period: period, EvaluationPeriods: 3, DatapointsToAlarm: 2,
			Threshold: 1e9, ComparisonOperator: kiln.GreaterThanThreshold,
		}
	}
	e := alarm.NewEngine(alarm.Config{Clock: clk, Local: server.AlarmSource(st, nil)})
	e.Reload(alarms)
	ctx := context.Background()
	e.Tick(ctx) // the first round evaluates every new alarm
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clk.Advance(200 * time.Millisecond)
		e.Tick(ctx)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/alarm")
}

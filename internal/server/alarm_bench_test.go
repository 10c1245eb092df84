package server

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// BenchmarkAlarmStateChange measures what one alarm's state change costs
// a Kiln holding N alarms: SetAlarmState writes the alarm's record, as the
// engine's own state changes do, and the store's watch hands the write to
// the alarm engine. cpu-ns/op is the process's CPU time per change, the
// watch's included (ns/op is mostly the store's fsync). Reloading every
// alarm on every such write made thousands of alarms cost a core; it now
// costs one alarm's decode. The engine's idle ticks over N alarms count
// too (BenchmarkEngineTick in internal/alarm measures them alone).
func BenchmarkAlarmStateChange(b *testing.B) {
	for _, n := range []int{1, 100, 2000} {
		b.Run(fmt.Sprintf("alarms=%d", n), func(b *testing.B) {
			srv, err := New(Config{Addr: "127.0.0.1:0", DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			defer func() {
				if err := srv.Close(); err != nil {
					b.Error(err)
				}
			}()
			if err := srv.Run(ctx); err != nil {
				b.Fatal(err)
			}
			for i := range n {
				a := &kiln.Alarm{AlarmName: fmt.Sprintf("a%d", i), Namespace: "AWS/SageMaker", MetricName: "Invocations",
					Dimensions: []kiln.Dimension{{Name: "EndpointName", Value: "demo"}}, Statistic: "Sum",
					Period: 60, EvaluationPeriods: 3, Threshold: 1e9, ComparisonOperator: kiln.GreaterThanThreshold}
				if _, err := srv.svc.PutAlarm(ctx, a); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(time.Second) // let the watch catch up with the set-up
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				reason := fmt.Sprintf("bench %d", i)
				if err := srv.svc.SetAlarmState(ctx, "a0", []string{kiln.StateOK, kiln.StateAlarm}[i%2], reason, ""); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// The watch handles the writes on its own goroutine: give it
			// time to finish, then count the whole process's CPU time.
			time.Sleep(500 * time.Millisecond)
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

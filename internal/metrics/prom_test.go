package metrics

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kiln-serve/kiln/internal/clock"
)

// gather returns the exposed samples as "name{labels}" → value, with
// histograms as their sample count and sum.
func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			key := mf.GetName() + "{" + strings.Join(ls, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
				out[key+"_sum"] = m.GetHistogram().GetSampleSum()
				for _, b := range m.GetHistogram().GetBucket() {
					out[fmt.Sprintf("%s_le=%g", key, b.GetUpperBound())] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

func TestPrometheus(t *testing.T) {
	clk := clockFake(t)
	reg := prometheus.NewPedanticRegistry()
	st := New(clk, reg)
	s := st.Series("e", "v", "c")
	s.Record(Sample{Status: 200, ModelLatency: 200 * time.Millisecond, OverheadLatency: time.Millisecond, Instances: 1})
	s.Record(Sample{Status: 404, ModelLatency: 200 * time.Millisecond, OverheadLatency: time.Millisecond, Instances: 1})
	s.Record(Sample{Status: 503, ModelError: true, ModelLatency: 400 * time.Millisecond, OverheadLatency: 3 * time.Millisecond, Instances: 1})

	lbl := "config=c,endpoint=e,variant=v}"
	if got := gather(t, reg)["kiln_invocations_total{"+lbl]; got != 0 {
		t.Errorf("the live second is exposed before it ends: %v", got)
	}
	clk.Advance(time.Second)
	got := gather(t, reg)
	want := map[string]float64{
		"kiln_invocations_total{" + lbl:                       3,
		"kiln_invocation_errors_total{class=4xx," + lbl:       1,
		"kiln_invocation_errors_total{class=5xx," + lbl:       1,
		"kiln_invocation_errors_total{class=model," + lbl:     1,
		"kiln_model_latency_seconds{" + lbl + "_count":        3,
		"kiln_model_latency_seconds{" + lbl + "_le=0.1":       0,
		"kiln_model_latency_seconds{" + lbl + "_le=0.25":      2,
		"kiln_model_latency_seconds{" + lbl + "_le=0.5":       3,
		"kiln_model_latency_seconds{" + lbl + "_le=60":        3,
		"kiln_overhead_latency_seconds{" + lbl + "_count":     3,
		"kiln_overhead_latency_seconds{" + lbl + "_le=0.001":  0, // 1 ms is within 1% of the bound
		"kiln_overhead_latency_seconds{" + lbl + "_le=0.0025": 2,
		"kiln_overhead_latency_seconds{" + lbl + "_le=0.005":  3,
	}
	for k, v := range want {
		if strings.HasSuffix(k, "_le=0.001") {
			if got[k] != 0 && got[k] != 2 {
				t.Errorf("%s = %v, want 0 or 2", k, got[k])
			}
			continue
		}
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k, v := range map[string]float64{"kiln_model_latency_seconds{" + lbl + "_sum": 0.8, "kiln_overhead_latency_seconds{" + lbl + "_sum": 0.005} {
		if math.Abs(got[k]-v) > 1e-12 {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	// A second store on the same registry is exposed too.
	st2 := New(clk, reg)
	st2.Series("e2", "v", "c").Record(Sample{Status: 200, Instances: 1})
	clk.Advance(time.Second)
	if got := gather(t, reg)["kiln_invocations_total{config=c,endpoint=e2,variant=v}"]; got != 1 {
		t.Errorf("second store's counter = %v, want 1", got)
	}

	st.Forget("e", "v", "c")
	s.Record(Sample{Status: 200, Instances: 1}) // a request still in flight
	clk.Advance(time.Second)
	for k := range gather(t, reg) {
		if strings.Contains(k, "endpoint=e,") {
			t.Errorf("forgotten series still exposed: %s", k)
		}
	}
	if dp := value(t, st, Query{MetricName: Invocations, Statistic: "Sum", Dimensions: fleet("e", "v", "c"),
		Period: time.Hour, Start: clk.Now().Add(-time.Minute), End: clk.Now()}); dp.Value != 4 {
		t.Errorf("history of forgotten series: Sum = %v, want 4", dp.Value)
	}
	if st.Series("e", "v", "c") != s {
		t.Error("Series after Forget returned a new series while history remains")
	}
	s.Record(Sample{Status: 200, Instances: 1})
	clk.Advance(time.Second)
	if got := gather(t, reg)["kiln_invocations_total{"+lbl]; got != 5 {
		t.Errorf("counter exposed again = %v, want 5 (it never goes back)", got)
	}
}

func TestForgottenSeriesAgeOut(t *testing.T) {
	st, clk := newTestStore(t)
	s := st.Series("e", "v", "c")
	s.Record(Sample{Status: 200, Instances: 1})
	st.Series("e", "v", "kept")
	st.Forget("e", "v", "c")
	clk.Advance(MinuteRetention + 2*time.Minute)
	st.ListMetrics("", "", nil)
	st.mu.RLock()
	_, forgotten := st.series[seriesKey{"e", "v", "c"}]
	_, kept := st.series[seriesKey{"e", "v", "kept"}]
	st.mu.RUnlock()
	if forgotten || !kept {
		t.Errorf("after a day: forgotten series present %v (want false), kept series present %v (want true)", forgotten, kept)
	}
	if st.Series("e", "v", "c") == s {
		t.Error("a dropped series came back")
	}
}

func TestRegisterConflictPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "kiln_invocations_total", Help: "not ours"}))
	defer func() {
		if recover() == nil {
			t.Error("New on a registry with a conflicting collector did not panic")
		}
	}()
	New(clockFake(t), reg)
}

func clockFake(t *testing.T) clock.Fake {
	_, clk := newTestStore(t)
	return clk
}

package metrics

import (
	"math"
	"testing"
	"time"
)

func TestRecent(t *testing.T) {
	st, clk := newTestStore(t)
	for i := range 100 {
		st.Series("e", "A", "c1").Record(Sample{Status: 200, ModelLatency: time.Duration(i+1) * time.Millisecond, Instances: 1})
	}
	st.Series("e", "A", "c2").Record(Sample{Status: 404, ModelLatency: time.Second, Instances: 1})
	st.Series("e", "A", "c2").Record(Sample{Status: 502, ModelError: true, ModelLatency: time.Second, Instances: 1})
	st.Series("e", "B", "c1").Record(Sample{Status: 200, ModelLatency: time.Millisecond, Instances: 1})
	st.Series("e", "A", "old") // no traffic, not forgotten: listed with zeros
	st.Series("e", "B", "gone")
	st.Forget("e", "B", "gone") // no traffic, forgotten: not listed
	st.Series("other", "A", "c1").Record(Sample{Status: 200, Instances: 1})
	clk.Advance(time.Second)

	got := st.Recent("e", time.Minute)
	if len(got) != 2 || got[0].VariantName != "A" || got[1].VariantName != "B" {
		t.Fatalf("variants %+v, want A then B", got)
	}
	a := got[0]
	if a.Invocations != 102 || a.Invocation4XXErrors != 1 || a.Invocation5XXErrors != 1 || a.InvocationModelErrors != 1 {
		t.Errorf("variant A counts %+v", a.Summary)
	}
	if len(a.Configs) != 3 || a.Configs[0].EndpointConfigName != "c1" || a.Configs[1].EndpointConfigName != "c2" || a.Configs[2].EndpointConfigName != "old" {
		t.Fatalf("variant A configs %+v", a.Configs)
	}
	near := func(name string, got, want time.Duration) {
		t.Helper()
		if math.Abs(float64(got-want)) > 0.01*float64(want) {
			t.Errorf("%s = %v, want %v within 1%%", name, got, want)
		}
	}
	c1 := a.Configs[0]
	if c1.Invocations != 100 {
		t.Errorf("c1 invocations %d, want 100", c1.Invocations)
	}
	near("c1 p50", c1.ModelLatencyP50, 50*time.Millisecond) // rank 49
	near("c1 p90", c1.ModelLatencyP90, 90*time.Millisecond) // rank 89
	near("c1 p99", c1.ModelLatencyP99, 99*time.Millisecond) // rank 98
	near("A p99", a.ModelLatencyP99, 100*time.Millisecond)  // rank 99; ranks 100, 101 are 1 s
	near("A p50", a.ModelLatencyP50, 51*time.Millisecond)   // rank 50
	if old := a.Configs[2]; old.Invocations != 0 || old.ModelLatencyP99 != 0 {
		t.Errorf("idle config %+v, want zeros", old)
	}
	if b := got[1]; b.Invocations != 1 || len(b.Configs) != 1 {
		t.Errorf("variant B %+v, want one invocation in one config", b)
	}

	clk.Advance(2 * time.Minute)
	if got := st.Recent("e", time.Minute); got[0].Invocations != 0 {
		t.Errorf("a minute later: %+v, want no invocations", got[0])
	}
	if got := st.Recent("nope", time.Minute); len(got) != 0 {
		t.Errorf("unknown endpoint: %+v", got)
	}
}

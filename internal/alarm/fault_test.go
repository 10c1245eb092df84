package alarm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// panicSource panics for one alarm and answers the others from a memSource.
type panicSource struct {
	*memSource
	victim string
}

func (s panicSource) Datapoints(ctx context.Context, a *kiln.Alarm, start, end time.Time) ([]Datapoint, error) {
	if a.AlarmName == s.victim {
		var pts []Datapoint
		_ = pts[len(a.AlarmName)] // index out of range, as a bug would
	}
	return s.memSource.Datapoints(ctx, a, start, end)
}

// An alarm whose evaluation panics is set aside in INSUFFICIENT_DATA with a
// reason naming the failure; the others are evaluated as before, and the
// engine goes on running.
func TestEnginePanickingAlarmIsIsolated(t *testing.T) {
	src := newMemSource(true)
	repo := &memRepo{alarms: []kiln.Alarm{errorsAlarm("before"), errorsAlarm("boom"), errorsAlarm("after")}}
	h := startEngine(t, src, repo, func(c *Config) { c.Local = panicSource{src, "boom"} })

	st, ok := h.engine.State("boom")
	if !ok || st.StateValue != kiln.StateInsufficientData || !strings.Contains(st.StateReason, "evaluation failed") || !strings.Contains(st.StateReason, "index out of range") {
		t.Fatalf("boom: %+v, want INSUFFICIENT_DATA with a reason naming the panic", st)
	}
	for _, name := range []string{"before", "after"} {
		if st, _ := h.engine.State(name); st.StateValue != kiln.StateOK {
			t.Errorf("%s: %s, want OK (evaluated despite boom)", name, st.StateValue)
		}
	}
	// The others keep being evaluated, tick after tick.
	src.set("after", h.clock.Now().Truncate(time.Second), 3)
	h.step()
	if st, _ := h.engine.State("after"); st.StateValue != kiln.StateAlarm {
		t.Errorf("after: %s, want ALARM", st.StateValue)
	}
	// The fault was recorded once, not on every tick.
	n := 0
	for _, s := range repo.summaries() {
		if strings.HasPrefix(s, "boom:") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("boom's fault recorded %d times, want once: %q", n, repo.summaries())
	}
	if _, err := h.engine.EvaluateNow(context.Background(), "boom"); err == nil {
		t.Error("EvaluateNow of the faulty alarm: no error")
	}
	// A new definition is evaluated again.
	fixed := errorsAlarm("boom")
	fixed.Threshold = 5
	h.engine.Reload([]kiln.Alarm{errorsAlarm("before"), fixed, errorsAlarm("after")})
	h.step() // still panics: the source panics for this name whatever the definition
	if st, _ := h.engine.State("boom"); st.StateValue != kiln.StateInsufficientData {
		t.Errorf("boom redefined: %s", st.StateValue)
	}
}

// The alarm that once crashed Kiln at every start: valid by the old check,
// because Period × EvaluationPeriods overflowed. Loaded from a store that
// holds it, it is set aside and the engine runs on.
func TestEngineStoredOverflowAlarm(t *testing.T) {
	bad := errorsAlarm("overflow")
	bad.Period = 86400
	bad.EvaluationPeriods = 4611686018427387904
	src := newMemSource(true)
	repo := &memRepo{alarms: []kiln.Alarm{bad, errorsAlarm("ok")}}
	h := startEngine(t, src, repo, nil)
	h.step()
	st, ok := h.engine.State("overflow")
	if !ok || st.StateValue != kiln.StateInsufficientData || !strings.Contains(st.StateReason, "EvaluationPeriods") {
		t.Fatalf("overflow: %+v, want INSUFFICIENT_DATA naming EvaluationPeriods", st)
	}
	if st, _ := h.engine.State("ok"); st.StateValue != kiln.StateOK {
		t.Errorf("ok: %s, want OK", st.StateValue)
	}
}

// Evaluate and Window never panic or overflow on a definition outside the
// limits, even one that Validate would refuse.
func TestEvaluateOutOfLimits(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ period, n int }{
		{86400, 4611686018427387904}, {1, 1 << 62}, {1 << 40, 3}, {-5, 2}, {60, -1}, {0, 0}, {86400, 8},
	} {
		a := errorsAlarm("x")
		a.Period, a.EvaluationPeriods = tc.period, tc.n
		start, end := Window(&a, now)
		if !start.Before(end) || end.After(now) || end.Sub(start) > 9*24*time.Hour {
			t.Errorf("Window(%d, %d) = %v, %v", tc.period, tc.n, start, end)
		}
		res := Evaluate(&a, []Datapoint{{Timestamp: start, Value: 1}}, now)
		if a.Validate() != nil && res.State != "" && res.State != kiln.StateInsufficientData {
			t.Errorf("Evaluate(%d, %d) of an invalid alarm = %s", tc.period, tc.n, res.State)
		}
	}
}

// Put and Remove change one alarm as Reload would: a redefined alarm keeps
// its state and is evaluated on the next tick, a new one starts from its
// stored state, a removed one is gone.
func TestEnginePutRemove(t *testing.T) {
	src := newMemSource(true)
	h := startEngine(t, src, &memRepo{alarms: []kiln.Alarm{errorsAlarm("a")}}, nil)
	if st, _ := h.engine.State("a"); st.StateValue != kiln.StateOK {
		t.Fatalf("a: %s", st.StateValue)
	}
	b := errorsAlarm("b")
	b.AlarmState = kiln.AlarmState{StateValue: kiln.StateAlarm, StateReason: "stored"}
	h.engine.Put(b)
	if st, ok := h.engine.State("b"); !ok || st.StateReason != "stored" {
		t.Fatalf("b after Put: %+v %v", st, ok)
	}
	h.step()
	if st, _ := h.engine.State("b"); st.StateValue != kiln.StateOK {
		t.Errorf("b after a tick: %s, want OK", st.StateValue)
	}
	// A state-only write of a (what the engine's own saves look like) does
	// not change its definition.
	a := errorsAlarm("a")
	a.AlarmState = kiln.AlarmState{StateValue: kiln.StateOK}
	h.engine.Put(a)
	a.Threshold = -1 // every point breaches now
	h.engine.Put(a)
	h.step()
	if st, _ := h.engine.State("a"); st.StateValue != kiln.StateAlarm {
		t.Errorf("a redefined: %s, want ALARM", st.StateValue)
	}
	h.engine.Remove("a")
	if _, ok := h.engine.State("a"); ok {
		t.Error("a still known after Remove")
	}
	h.step()
}

package deploy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// judged runs the world as until does, with the judge verdicts verdict
// gives at each look.
func (w *world) judged(verdict func(w *world) map[string]JudgeVerdict, cond func(kiln.Endpoint) bool) {
	w.t.Helper()
	for i := 0; !cond(w.ep); i++ {
		if i > 100000 || w.now.Sub(t0) > 48*time.Hour {
			w.t.Fatalf("no end after %d looks, %v simulated", i, w.now.Sub(t0))
		}
		obs := w.observe()
		obs.Judges = verdict(w)
		next, events, _, err := Next(w.ep, obs, w.now)
		if err != nil {
			w.t.Fatalf("Next at %v: %v", w.now.Sub(t0), err)
		}
		if next.Deployment == w.ep.Deployment && next.Deployment != nil {
			w.now = w.now.Add(time.Second) // the controller's periodic look
			continue
		}
		b, _ := json.Marshal(next)
		var stored kiln.Endpoint
		if err := json.Unmarshal(b, &stored); err != nil {
			w.t.Fatal(err)
		}
		w.ep = stored
		w.records = append(w.records, record{at: w.now, ep: stored})
		w.history = append(w.history, events...)
		checkInvariants(w.t, stored)
	}
}

func judgeStarted(t *testing.T, dc *kiln.DeploymentConfig) (*world, []string, time.Time) {
	t.Helper()
	w := created(t, c1)
	w.update(c2, dc)
	start := w.now
	return w, w.ep.Deployment.Green, start
}

// A judge without a verdict holds the canary's bake past its time, until
// it has one.
func TestJudgeWaitExtendsBake(t *testing.T) {
	w, green, start := judgeStarted(t, canaryConfig(count(1), 600, 300, "judge"))
	verdictAt := start.Add(900 * time.Second)
	w.judged(func(w *world) map[string]JudgeVerdict {
		return map[string]JudgeVerdict{"judge": {Wait: w.now.Before(verdictAt)}}
	}, func(ep kiln.Endpoint) bool { return ep.Deployment == nil })
	if w.ep.FailureReason != "" {
		t.Fatalf("update failed: %s", w.ep.FailureReason)
	}
	full, _ := w.firstRecord(func(ep kiln.Endpoint) bool { return greenShareOf(ep, green, "v") == 1 })
	if full.at.Before(verdictAt) {
		t.Errorf("full shift at %v, before the judge's verdict at %v", full.at.Sub(start), verdictAt.Sub(start))
	}
	if d := full.at.Sub(verdictAt); d > 2*time.Second {
		t.Errorf("full shift %v after the verdict, want at once", d)
	}
	want := `Baking beyond 600 seconds: waiting for judge alarm "judge" to reach a verdict.`
	if msgs := w.statusMessages("v"); !hasMessage(msgs, want) {
		t.Errorf("statuses %q lack %q", msgs, want)
	}
	// The final bake does not wait: the judge cannot compare with all
	// traffic on the new fleet.
	gone, _ := w.firstRecord(func(ep kiln.Endpoint) bool { return len(ep.Fleets) == 1 })
	if d := gone.at.Sub(full.at); d < 300*time.Second || d > 302*time.Second {
		t.Errorf("blue terminated %v after the full shift, want the 300 s final bake", d)
	}
}

// A judge that never reaches a verdict holds the bake until the execution
// timeout, which rolls the update back.
func TestJudgeWaitTimesOut(t *testing.T) {
	dc := canaryConfig(count(1), 600, 300, "judge")
	dc.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds = 1200
	w, green, start := judgeStarted(t, dc)
	w.judged(func(*world) map[string]JudgeVerdict {
		return map[string]JudgeVerdict{"judge": {Wait: true}}
	}, func(ep kiln.Endpoint) bool { return ep.Deployment == nil })
	mustContain(t, w.ep.FailureReason, "did not complete within MaximumExecutionTimeoutInSeconds (1200 seconds)")
	if got := w.shares(green, "v"); slices.Contains(got, 1) {
		t.Errorf("green shares %v: traffic moved on without a verdict", got)
	}
	if end := w.history[len(w.history)-1].Time; end.Sub(start) < 1200*time.Second {
		t.Errorf("rolled back after %v, before the timeout", end.Sub(start))
	}
}

// A judge that shows the new fleet is not worse ends the canary's bake
// early; the final bake still runs its course.
func TestJudgePromoteEndsBakeEarly(t *testing.T) {
	w, green, start := judgeStarted(t, canaryConfig(count(1), 600, 300, "judge", "errors"))
	shown := start.Add(120 * time.Second)
	w.judged(func(w *world) map[string]JudgeVerdict {
		return map[string]JudgeVerdict{"judge": {Promote: !w.now.Before(shown)}}
	}, func(ep kiln.Endpoint) bool { return ep.Deployment == nil })
	if w.ep.FailureReason != "" {
		t.Fatalf("update failed: %s", w.ep.FailureReason)
	}
	canary, _ := w.firstRecord(func(ep kiln.Endpoint) bool { return greenShareOf(ep, green, "v") == 0.25 })
	full, _ := w.firstRecord(func(ep kiln.Endpoint) bool { return greenShareOf(ep, green, "v") == 1 })
	if d := full.at.Sub(canary.at); d >= 600*time.Second || full.at.Before(shown) {
		t.Errorf("full shift %v after the canary (promotion at %v), want before the 600 s bake ends and after the promotion", d, shown.Sub(start))
	}
	early := false
	for _, ev := range w.history {
		early = early || strings.Contains(ev.Message, `Bake ended early: judge alarm "judge"`)
	}
	if !early {
		t.Errorf("history does not say the bake ended early")
	}
	gone, _ := w.firstRecord(func(ep kiln.Endpoint) bool { return len(ep.Fleets) == 1 })
	if d := gone.at.Sub(full.at); d < 300*time.Second {
		t.Errorf("blue terminated %v after the full shift, want the whole 300 s final bake", d)
	}
}

// Early promotion needs every judge to agree; and a judge's verdict never
// overrides an alarm in ALARM.
func TestJudgePromoteNeedsEveryJudge(t *testing.T) {
	w, green, start := judgeStarted(t, canaryConfig(count(1), 600, 0, "judge", "judge-strict"))
	w.judged(func(w *world) map[string]JudgeVerdict {
		return map[string]JudgeVerdict{"judge": {Promote: true}, "judge-strict": {}}
	}, func(ep kiln.Endpoint) bool { return greenShareOf(ep, green, "v") == 1 })
	if d := w.now.Sub(start); d < 600*time.Second {
		t.Errorf("full shift after %v with one judge not promoting, want the 600 s bake", d)
	}

	w, _, _ = judgeStarted(t, canaryConfig(count(1), 600, 0, "judge"))
	w.judged(func(w *world) map[string]JudgeVerdict {
		if greenShareOf(w.ep, w.ep.Deployment.Green, "v") > 0 {
			w.setAlarm("judge", kiln.StateAlarm, "worse")
		}
		return map[string]JudgeVerdict{"judge": {Promote: true}}
	}, func(ep kiln.Endpoint) bool { return ep.Deployment == nil })
	mustContain(t, w.ep.FailureReason, `alarm "judge" is in ALARM`)
}

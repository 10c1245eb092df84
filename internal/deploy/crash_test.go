package deploy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// scenario is a deployment whose world is a function of the record and the
// time alone, so that it can be replayed from any record.
type scenario struct {
	name   string
	start  func(t *testing.T) *world // an endpoint with the deployment started
	alarm  time.Duration             // when alarm "a" goes to ALARM after t0 (0: never; negative: from the start)
	stop   time.Duration             // when an operator stops the update (0: never)
	health func(w *world, f kiln.Fleet) FleetStatus
	// answered counts what new fleets answered during bakes (nil: nothing
	// is counted).
	answered func(w *world, f kiln.Fleet, since time.Time) int
}

func (sc scenario) hook(w *world) {
	st := kiln.StateOK
	if sc.alarm != 0 && !w.now.Before(t0.Add(sc.alarm)) {
		st = kiln.StateAlarm
	}
	w.alarms = map[string]kiln.AlarmState{"a": {StateValue: st, StateReason: "replayed"}}
	if sc.stop > 0 && !w.now.Before(t0.Add(sc.stop)) && w.ep.Deployment != nil && !w.ep.Deployment.StopRequested {
		if ep, err := RequestStop(w.ep, "stopped by operator", w.now); err == nil {
			w.ep = ep
		}
	}
}

func (sc scenario) run(t *testing.T, from kiln.Endpoint, at time.Time) *world {
	w := newWorld(t, from)
	w.now = at
	w.hook = sc.hook
	w.health = sc.health
	w.answered = sc.answered
	for _, d := range []time.Duration{sc.alarm, sc.stop} {
		if d > 0 {
			w.changesAt = append(w.changesAt, t0.Add(d))
		}
	}
	w.settle()
	return w
}

// routingSummary is what must be the same however the controller was restarted:
// the endpoint's status and its routing state.
func routingSummary(ep kiln.Endpoint) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s (%s) deployment=%v\n", ep.EndpointStatus, ep.EndpointConfigName, ep.FailureReason, ep.Deployment != nil)
	for _, f := range ep.Fleets {
		fmt.Fprintf(&b, "fleet %s %s/%s %d/%d %.6f\n", f.ID, f.VariantName, f.EndpointConfigName, f.ActiveInstanceCount, f.InstanceCount, f.TrafficShare)
	}
	for _, pv := range ep.ProductionVariants {
		fmt.Fprintf(&b, "variant %s w%g/%g n%d/%d %s\n", pv.VariantName, pv.CurrentWeight, pv.DesiredWeight, pv.CurrentInstanceCount, pv.DesiredInstanceCount, pv.DeployedImages[0].SpecifiedImage)
	}
	return b.String()
}

func startedWith(cfg kiln.EndpointConfig, next kiln.EndpointConfig, dc *kiln.DeploymentConfig) func(*testing.T) *world {
	return func(t *testing.T) *world {
		w := created(t, cfg)
		w.now = t0
		w.update(next, dc)
		w.records = w.records[:0]
		return w
	}
}

func failingGreen(_ *world, f kiln.Fleet) FleetStatus {
	if f.EndpointConfigName == "c2" && f.InstanceCount > 0 {
		return FleetStatus{Starting: f.InstanceCount, LaunchFailed: true, Reason: "crash loop"}
	}
	return FleetStatus{Healthy: f.InstanceCount}
}

// TestCrashSafety runs each scenario, then replays it from every record it
// wrote, as a controller restarted at that instant would, and checks that
// it ends exactly where the uninterrupted run ended; and, restarted some
// seconds late, in the same state.
func TestCrashSafety(t *testing.T) {
	two := func(name, model string) kiln.EndpointConfig {
		return config(name, pv{name: "a", model: model, count: 4}, pv{name: "b", model: model, count: 2, weight: 2})
	}
	weights := func(t *testing.T) *world {
		w := created(t, config("c1", pv{name: "a", model: "m1", count: 2}, pv{name: "b", model: "m1", count: 3}))
		w.now = t0
		three, one, half := 3, 1, 0.5
		ep, err := StartWeights(w.ep, []kiln.DesiredWeightAndCapacity{{VariantName: "a", DesiredInstanceCount: &three}, {VariantName: "b", DesiredInstanceCount: &one, DesiredWeight: &half}}, w.now)
		if err != nil {
			t.Fatal(err)
		}
		w.ep = ep
		return w
	}
	scenarios := []scenario{
		{name: "canary completes", start: startedWith(c1, c2, canaryConfig(pct(25), 600, 300, "a"))},
		{name: "canary alarm during bake", start: startedWith(c1, c2, canaryConfig(pct(25), 600, 300, "a")), alarm: 400 * time.Second},
		{name: "linear alarm in final bake", start: startedWith(c1, c2, linearConfig(pct(25), 60, 600, "a")), alarm: 500 * time.Second},
		{name: "all at once", start: startedWith(c1, c2, allAtOnceConfig(60, 60, "a"))},
		{name: "alarm before traffic", start: startedWith(c1, c2, canaryConfig(pct(25), 60, 0, "a")), alarm: -1},
		{name: "green fails to launch", start: startedWith(c1, c2, canaryConfig(pct(25), 60, 0, "a")), health: failingGreen},
		{name: "stopped", start: startedWith(c1, c2, linearConfig(pct(25), 120, 0, "a")), stop: 200 * time.Second},
		{name: "lockstep linear", start: startedWith(two("c1", "m1"), two("c2", "m2"), linearConfig(pct(25), 60, 60, "a"))},
		{name: "lockstep alarm", start: startedWith(two("c1", "m1"), two("c2", "m2"), linearConfig(pct(25), 60, 60, "a")), alarm: 150 * time.Second},
		{name: "rolling completes", start: startedWith(c1, c2, rollingConfig(pct(25), nil, 60, "a"))},
		{name: "rolling rollback in batches", start: startedWith(c1, c2, rollingConfig(pct(25), count(1), 60, "a")), alarm: 150 * time.Second},
		{name: "rolling lockstep rollback", start: startedWith(two("c1", "m1"), two("c2", "m2"), rollingConfig(pct(25), pct(25), 60, "a")), alarm: 200 * time.Second},
		{name: "weights", start: weights},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			w := sc.start(t)
			start := cloneEndpoint(w.ep)
			orig := sc.run(t, start, t0)
			if orig.ep.Deployment != nil {
				t.Fatal("scenario did not end")
			}
			records := append([]record{{at: t0, ep: start}}, orig.records...)
			for i, r := range records {
				again := sc.run(t, r.ep, r.at)
				if !reflect.DeepEqual(again.ep, orig.ep) {
					t.Fatalf("restarted from record %d (%v) ends in\n%s\nwant\n%s", i, r.at.Sub(t0), routingSummary(again.ep), routingSummary(orig.ep))
				}
				for j, rr := range again.records {
					if want := orig.records[i+j]; !reflect.DeepEqual(rr.ep, want.ep) {
						t.Fatalf("restarted from record %d, write %d differs from the original's", i, j)
					}
				}
				late := sc.run(t, r.ep, r.at.Add(7*time.Second))
				if routingSummary(late.ep) != routingSummary(orig.ep) {
					t.Fatalf("restarted 7 s late from record %d (%v) ends in\n%s\nwant\n%s", i, r.at.Sub(t0), routingSummary(late.ep), routingSummary(orig.ep))
				}
			}
		})
	}
}

// TestRandomDeployments runs random updates — policies, sizes, bakes,
// alarms, stops and launch failures — checking the invariants at every
// write, and replays each from a random record.
func TestRandomDeployments(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ran := 0
	for i := range n {
		sc, expectRollback, ok := randomScenario(t, rng)
		sc.name = fmt.Sprint(i)
		func() {
			if !ok {
				return
			}
			w := sc.start(t)
			ran++
			start := cloneEndpoint(w.ep)
			orig := sc.run(t, start, t0)
			ep := orig.ep
			if ep.Deployment != nil || ep.EndpointStatus != kiln.StatusInService {
				t.Fatalf("scenario %d ended %s with %+v", i, ep.EndpointStatus, ep.Deployment)
			}
			rolledBack := ep.EndpointConfigName == "c1"
			if expectRollback && !rolledBack {
				t.Fatalf("scenario %d: expected a rollback, got %s", i, routingSummary(ep))
			}
			if rolledBack && ep.FailureReason == "" || !rolledBack && ep.FailureReason != "" {
				t.Fatalf("scenario %d: on %s with FailureReason %q", i, ep.EndpointConfigName, ep.FailureReason)
			}
			for _, f := range ep.Fleets {
				if f.EndpointConfigName != ep.EndpointConfigName || f.ActiveInstanceCount != f.InstanceCount || f.TrafficShare != 1 {
					t.Fatalf("scenario %d: settled fleet %+v on %s", i, f, ep.EndpointConfigName)
				}
			}
			checkMonotonic(t, orig.records)
			if len(orig.records) > 0 {
				k := rng.IntN(len(orig.records))
				r := orig.records[k]
				again := sc.run(t, r.ep, r.at)
				if !reflect.DeepEqual(again.ep, orig.ep) {
					t.Fatalf("scenario %d restarted from record %d ends in\n%s\nwant\n%s", i, k, routingSummary(again.ep), routingSummary(orig.ep))
				}
			}
		}()
	}
	t.Logf("%d of %d random updates were valid and ran", ran, n)
	if ran < n/3 {
		t.Fatalf("only %d of %d random scenarios were valid updates", ran, n)
	}
}

// checkMonotonic: until a rollback starts, the new fleets' share of every
// variant never goes down.
func checkMonotonic(t *testing.T, records []record) {
	t.Helper()
	prev := map[string]float64{}
	for _, r := range records {
		d := r.ep.Deployment
		if d == nil || d.Phase == kiln.PhaseRollingBack {
			return
		}
		var variants []string
		for _, pv := range r.ep.ProductionVariants {
			variants = append(variants, pv.VariantName)
		}
		sort.Strings(variants)
		for _, v := range variants {
			s := greenShareOf(r.ep, d.Green, v)
			if s < prev[v]-1e-12 {
				t.Fatalf("variant %q: green share went from %v to %v at %v", v, prev[v], s, r.at.Sub(t0))
			}
			prev[v] = s
		}
	}
}

// randomScenario returns a random update, whether it must roll back, and
// whether StartUpdate accepts it (a plan may not fit the sizes).
func randomScenario(t *testing.T, rng *rand.Rand) (scenario, bool, bool) {
	nv := 1 + rng.IntN(2)
	var oldVs, newVs []pv
	for v := range nv {
		name := string(rune('a' + v))
		oldVs = append(oldVs, pv{name: name, model: "m1", count: 1 + rng.IntN(6), weight: float64(1 + rng.IntN(3))})
		newVs = append(newVs, pv{name: name, model: "m2", count: 1 + rng.IntN(6), weight: float64(1 + rng.IntN(3))})
	}
	size := func(lo, hi int) *kiln.CapacitySize {
		if rng.IntN(2) == 0 {
			return pct(lo + rng.IntN(hi-lo+1))
		}
		return count(1 + rng.IntN(3))
	}
	wait, term := 60*rng.IntN(10), 60*rng.IntN(5)
	var dc *kiln.DeploymentConfig
	switch rng.IntN(4) {
	case 0:
		dc = canaryConfig(size(1, 50), wait, term, "a")
	case 1:
		dc = linearConfig(size(10, 50), wait, term, "a")
	case 2:
		dc = allAtOnceConfig(wait, term, "a")
		if rng.IntN(2) == 0 && nv == 2 { // change the variants
			newVs[1].name = "c"
		}
	case 3:
		var rb *kiln.CapacitySize
		if rng.IntN(2) == 0 {
			rb = size(1, 100)
		}
		dc = rollingConfig(size(5, 50), rb, wait, "a")
		if rb != nil && rb.Type == kiln.CapacityPercent && rb.Value < 1 {
			rb.Value = 1
		}
	}
	if rng.IntN(3) == 0 {
		timeout := 600 + rng.IntN(1200)
		if dc.RollingUpdatePolicy != nil {
			dc.RollingUpdatePolicy.MaximumExecutionTimeoutInSeconds = timeout
		} else {
			dc.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds = timeout
		}
	}
	sc := scenario{}
	expectRollback := false
	switch rng.IntN(5) {
	case 0:
		sc.alarm = time.Duration(rng.IntN(3000)) * time.Second
	case 1:
		sc.stop = time.Duration(1+rng.IntN(1200)) * time.Second
	case 2:
		sc.health = failingGreen
		expectRollback = true
	}
	oldCfg, newCfg := config("c1", oldVs...), config("c2", newVs...)
	sc.start = func(t *testing.T) *world {
		w := created(t, oldCfg)
		w.now = t0
		ep, err := StartUpdate(w.ep, newCfg, testModels, kiln.UpdateEndpointInput{DeploymentConfig: dc}, func(string) bool { return true }, w.now)
		if err != nil {
			t.Fatalf("StartUpdate: %v", err)
		}
		w.ep = ep
		return w
	}
	_, err := StartUpdate(created(t, oldCfg).ep, newCfg, testModels, kiln.UpdateEndpointInput{DeploymentConfig: dc}, func(string) bool { return true }, t0)
	if err != nil && kiln.ErrorCode(err) != kiln.EINVALID {
		t.Fatalf("StartUpdate: %v", err)
	}
	return sc, expectRollback, err == nil
}

package deploy

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

var (
	c1 = config("c1", pv{name: "v", model: "m1", count: 4})
	c2 = config("c2", pv{name: "v", model: "m2", count: 4})
)

func TestCreate(t *testing.T) {
	ep, err := StartCreate(kiln.CreateEndpointInput{EndpointName: "ep", EndpointConfigName: "c1", Tags: []kiln.Tag{{Key: "k", Value: "v"}}}, c1, testModels, testARN, t0)
	if err != nil {
		t.Fatal(err)
	}
	if ep.EndpointStatus != kiln.StatusCreating || len(ep.Fleets) != 1 || ep.Fleets[0].InstanceCount != 4 || ep.Tags[0].Key != "k" {
		t.Fatalf("StartCreate gave %+v", ep)
	}
	if got := variantStatus(ep, "v").StatusMessage; got != "Launching 4 instance(s)." {
		t.Errorf("status %q, want Launching 4 instance(s).", got)
	}
	healthy := 0
	w := newWorld(t, ep)
	w.health = func(_ *world, f kiln.Fleet) FleetStatus {
		return FleetStatus{Healthy: healthy, Starting: f.InstanceCount - healthy}
	}
	if changed, _ := w.look(); changed {
		t.Fatal("creation moved on before any instance was healthy")
	}
	healthy = 3
	if changed, _ := w.look(); changed {
		t.Fatal("creation moved on with 3 of 4 instances healthy")
	}
	healthy = 4
	w.settle()
	if w.ep.EndpointStatus != kiln.StatusInService || w.ep.Deployment != nil || w.ep.FailureReason != "" {
		t.Fatalf("after creation: %s %q", w.ep.EndpointStatus, w.ep.FailureReason)
	}
	if pv := w.ep.ProductionVariants[0]; pv.CurrentWeight != 1 || pv.CurrentInstanceCount != 4 || pv.VariantStatus != nil ||
		pv.DeployedImages[0].SpecifiedImage != "serve --version 1" {
		t.Errorf("variant after creation: %+v", pv)
	}
	if n := len(w.history); n != 1 || w.history[0].Phase != kiln.PhaseCompleted {
		t.Errorf("history %+v, want one Completed event", w.history)
	}
}

func TestCreateLaunchFailure(t *testing.T) {
	ep, err := StartCreate(kiln.CreateEndpointInput{EndpointName: "ep"}, c1, testModels, testARN, t0)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, ep)
	w.health = func(*world, kiln.Fleet) FleetStatus {
		return FleetStatus{LaunchFailed: true, Reason: "exit status 1"}
	}
	w.settle()
	if w.ep.EndpointStatus != kiln.StatusFailed || len(w.ep.Fleets) != 0 {
		t.Fatalf("got %s with fleets %v, want Failed with none", w.ep.EndpointStatus, fleetIDs(w.ep))
	}
	mustContain(t, w.ep.FailureReason, `variant "v" could not launch: exit status 1`)
}

func TestCreateTimeout(t *testing.T) {
	ep, _ := StartCreate(kiln.CreateEndpointInput{EndpointName: "ep"}, c1, testModels, testARN, t0)
	w := newWorld(t, ep)
	w.health = func(*world, kiln.Fleet) FleetStatus { return FleetStatus{Starting: 4} }
	_, wake := w.look()
	if want := t0.Add(kiln.DefaultExecutionTimeoutSeconds * time.Second); !wake.Equal(want) {
		t.Fatalf("wake %v, want the creation deadline %v", wake, want)
	}
	w.settle()
	if w.ep.EndpointStatus != kiln.StatusFailed {
		t.Fatalf("status %s, want Failed", w.ep.EndpointStatus)
	}
	mustContain(t, w.ep.FailureReason, "within 28800 seconds")
}

// TestCanary is the canonical canary: 1 of 4 → 25% → bake 600 s → 100% →
// final bake 300 s → blue terminated.
func TestCanary(t *testing.T) {
	w := created(t, c1)
	blue := fleetIDs(w.ep)
	dc := canaryConfig(count(1), 600, 300)
	w.update(c2, dc)
	green := w.ep.Deployment.Green
	depID := w.ep.Deployment.ID
	w.settle()

	if got, want := w.shares(green, "v"), []float64{0, 0.25, 1}; !slices.Equal(got, want) {
		t.Errorf("green shares %v, want %v", got, want)
	}
	// The canary got traffic before the full shift by at least the bake.
	canary, _ := w.firstRecord(func(ep kiln.Endpoint) bool { return greenShareOf(ep, green, "v") == 0.25 })
	full, _ := w.firstRecord(func(ep kiln.Endpoint) bool { return greenShareOf(ep, green, "v") == 1 })
	if d := full.at.Sub(canary.at); d < 600*time.Second {
		t.Errorf("full shift %v after the canary, want at least the 600 s bake", d)
	}
	// Blue is terminated after the final bake.
	gone, _ := w.firstRecord(func(ep kiln.Endpoint) bool { return !slices.Contains(fleetIDs(ep), blue[0]) })
	if d := gone.at.Sub(full.at); d < 300*time.Second {
		t.Errorf("blue terminated %v after the full shift, want at least the 300 s final bake", d)
	}
	// The canary activates only its instance; the others are provisioned.
	for _, f := range canary.ep.Fleets {
		if f.ID == green[0] && (f.ActiveInstanceCount != 1 || f.InstanceCount != 4) {
			t.Errorf("canary fleet %+v, want 1 active of 4", f)
		}
		if f.ID == blue[0] && (f.ActiveInstanceCount != 4 || f.TrafficShare != 0.75) {
			t.Errorf("blue during the canary %+v, want 4 active with 75%%", f)
		}
	}

	msgs := w.statusMessages("v")
	for _, want := range []string{
		"Launching 4 instance(s).",
		"Activating traffic on canary capacity of 1 instance(s).",
		"Baking for 600 seconds (WaitIntervalInSeconds) with traffic enabled on canary capacity of 1 instance(s).",
		"Activating traffic on full capacity of 4 instance(s).",
		"Baking for 300 seconds (TerminationWaitInSeconds) with traffic enabled on full capacity of 4 instance(s).",
		"Terminating 4 instance(s).",
	} {
		if !hasMessage(msgs, want) {
			t.Errorf("status messages %q lack %q", msgs, want)
		}
	}

	ep := w.ep
	if ep.EndpointStatus != kiln.StatusInService || ep.EndpointConfigName != "c2" || ep.Deployment != nil || ep.FailureReason != "" {
		t.Fatalf("end: %s on %s, failure %q", ep.EndpointStatus, ep.EndpointConfigName, ep.FailureReason)
	}
	if !reflect.DeepEqual(fleetIDs(ep), green) {
		t.Errorf("fleets %v, want only green %v", fleetIDs(ep), green)
	}
	if !reflect.DeepEqual(ep.LastDeploymentConfig, dc) {
		t.Errorf("LastDeploymentConfig %+v, want %+v", ep.LastDeploymentConfig, dc)
	}
	if pv := ep.ProductionVariants[0]; pv.DeployedImages[0].SpecifiedImage != "serve --version 2" || pv.CurrentInstanceCount != 4 || pv.VariantStatus != nil {
		t.Errorf("variant at the end: %+v", pv)
	}
	last := w.history[len(w.history)-1]
	if last.Phase != kiln.PhaseCompleted || last.DeploymentID != depID || last.GreenShare != 1 {
		t.Errorf("last history event %+v", last)
	}
	// Green's share never went down during the update.
	prev := 0.0
	for _, ev := range w.history {
		if ev.GreenShare < prev {
			t.Fatalf("history share went from %v to %v: %+v", prev, ev.GreenShare, w.history)
		}
		prev = ev.GreenShare
	}
}

func TestLinear(t *testing.T) {
	w := created(t, c1)
	w.update(c2, linearConfig(pct(25), 60, 0))
	green := w.ep.Deployment.Green
	w.settle()
	if got, want := w.shares(green, "v"), []float64{0, 0.25, 0.5, 0.75, 1}; !slices.Equal(got, want) {
		t.Errorf("green shares %v, want %v", got, want)
	}
	// Each step bakes its minute.
	var at []time.Time
	for _, s := range []float64{0.25, 0.5, 0.75, 1} {
		r, _ := w.firstRecord(func(ep kiln.Endpoint) bool { return greenShareOf(ep, green, "v") == s })
		at = append(at, r.at)
	}
	for i := 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d < time.Minute {
			t.Errorf("step %d came %v after the previous, want at least the 60 s bake", i, d)
		}
	}
	if w.ep.EndpointConfigName != "c2" || w.ep.EndpointStatus != kiln.StatusInService {
		t.Fatalf("end: %s on %s", w.ep.EndpointStatus, w.ep.EndpointConfigName)
	}
	if !hasMessage(w.statusMessages("v"), "Baking for 60 seconds (WaitIntervalInSeconds) with traffic enabled on linear capacity of 3 instance(s).") {
		t.Errorf("messages %q", w.statusMessages("v"))
	}
}

func TestAllAtOnce(t *testing.T) {
	w := created(t, c1)
	w.update(c2, allAtOnceConfig(120, 0))
	green := w.ep.Deployment.Green
	w.settle()
	if got, want := w.shares(green, "v"), []float64{0, 1}; !slices.Equal(got, want) {
		t.Errorf("green shares %v, want %v", got, want)
	}
	if w.ep.EndpointConfigName != "c2" {
		t.Fatalf("config %s", w.ep.EndpointConfigName)
	}
	if d := w.now.Sub(t0); d < 120*time.Second {
		t.Errorf("done after %v, want at least the 120 s bake", d)
	}
}

func TestNoDeploymentConfig(t *testing.T) {
	w := created(t, c1)
	w.update(c2, nil)
	w.settle()
	if w.ep.EndpointConfigName != "c2" || w.now != t0 {
		t.Fatalf("end: %s after %v, want c2 at once", w.ep.EndpointConfigName, w.now.Sub(t0))
	}
	if w.ep.LastDeploymentConfig != nil {
		t.Errorf("LastDeploymentConfig %+v, want none", w.ep.LastDeploymentConfig)
	}
}

// TestAlarmDuringBake: an alarm in ALARM during the canary's bake sends all
// traffic back to blue in a single write, then green is removed.
func TestAlarmDuringBake(t *testing.T) {
	w := created(t, c1)
	blue := fleetIDs(w.ep)
	w.update(c2, canaryConfig(pct(25), 600, 300, "latency", "errors"))
	w.setAlarm("latency", kiln.StateOK, "fine")
	green := w.ep.Deployment.Green
	w.until(func(ep kiln.Endpoint) bool { return ep.Deployment.Phase == kiln.PhaseBaking })
	w.now = w.now.Add(300 * time.Second)
	if changed, _ := w.look(); changed {
		t.Fatal("the bake ended early")
	}
	w.setAlarm("errors", kiln.StateAlarm, "Threshold Crossed: 3 datapoints were greater than the threshold (1.0).")
	n := len(w.records)
	w.settle()

	swap := w.records[n].ep
	if swap.Deployment == nil || swap.Deployment.Phase != kiln.PhaseRollingBack || swap.EndpointStatus != kiln.StatusUpdating {
		t.Fatalf("first write after the alarm: %+v", swap.Deployment)
	}
	for _, f := range swap.Fleets {
		switch {
		case containsID(blue, f.ID) && (f.TrafficShare != 1 || f.ActiveInstanceCount != 4):
			t.Errorf("blue after the swap %+v, want all traffic on 4 instances", f)
		case containsID(green, f.ID) && f.TrafficShare != 0:
			t.Errorf("green after the swap %+v, want no traffic", f)
		}
	}
	if len(swap.Fleets) != 2 {
		t.Errorf("the swap write changed the fleets: %v", fleetIDs(swap))
	}
	removed := w.records[n+1].ep
	if !reflect.DeepEqual(fleetIDs(removed), blue) {
		t.Errorf("second write leaves fleets %v, want blue %v only", fleetIDs(removed), blue)
	}
	if w.now != w.records[n].at {
		t.Errorf("rollback took %v of simulated time", w.now.Sub(w.records[n].at))
	}

	ep := w.ep
	want := `Update rolled back because alarm "errors" is in ALARM: Threshold Crossed: 3 datapoints were greater than the threshold (1.0).`
	if ep.EndpointStatus != kiln.StatusInService || ep.EndpointConfigName != "c1" || ep.FailureReason != want || ep.Deployment != nil {
		t.Fatalf("end: %s on %s, failure %q", ep.EndpointStatus, ep.EndpointConfigName, ep.FailureReason)
	}
	if pv := ep.ProductionVariants[0]; pv.DeployedImages[0].SpecifiedImage != "serve --version 1" || pv.CurrentWeight != 1 || pv.CurrentInstanceCount != 4 {
		t.Errorf("variant after rollback %+v", pv)
	}
	if ep.LastDeploymentConfig != nil {
		t.Errorf("LastDeploymentConfig set by a rolled back update: %+v", ep.LastDeploymentConfig)
	}
	last := w.history[len(w.history)-1]
	if last.Phase != kiln.PhaseRolledBack || last.GreenShare != 0 {
		t.Errorf("last event %+v", last)
	}

	// The next successful update clears FailureReason.
	w.alarms = map[string]kiln.AlarmState{}
	w.update(c2, nil)
	w.settle()
	if w.ep.FailureReason != "" || w.ep.EndpointConfigName != "c2" {
		t.Errorf("after a later update: %s, failure %q", w.ep.EndpointConfigName, w.ep.FailureReason)
	}
}

func TestAlarmDuringFinalBake(t *testing.T) {
	w := created(t, c1)
	w.update(c2, canaryConfig(pct(25), 60, 600, "a"))
	green := w.ep.Deployment.Green
	w.until(func(ep kiln.Endpoint) bool {
		return ep.Deployment.Phase == kiln.PhaseBaking && greenShareOf(ep, green, "v") == 1
	})
	w.setAlarm("a", kiln.StateAlarm, "late")
	w.settle()
	if w.ep.EndpointConfigName != "c1" || w.ep.FailureReason != `Update rolled back because alarm "a" is in ALARM: late` {
		t.Fatalf("end: %s, failure %q", w.ep.EndpointConfigName, w.ep.FailureReason)
	}
}

// TestAlarmAlreadyInAlarm: the update fails before any traffic moves.
func TestAlarmAlreadyInAlarm(t *testing.T) {
	w := created(t, c1)
	w.setAlarm("a", kiln.StateAlarm, "bad already")
	blueBefore := w.ep.Fleets[0]
	w.update(c2, canaryConfig(pct(25), 600, 0, "a"))
	green := w.ep.Deployment.Green
	w.settle()
	for _, r := range w.records {
		if s := greenShareOf(r.ep, green, "v"); s != 0 {
			t.Fatalf("green got a share of %v at %v", s, r.at.Sub(t0))
		}
	}
	if w.ep.EndpointConfigName != "c1" || w.ep.EndpointStatus != kiln.StatusInService {
		t.Fatalf("end: %s on %s", w.ep.EndpointStatus, w.ep.EndpointConfigName)
	}
	if want := `Update failed before any traffic moved because alarm "a" was already in ALARM: bad already`; w.ep.FailureReason != want {
		t.Errorf("FailureReason %q, want %q", w.ep.FailureReason, want)
	}
	if !reflect.DeepEqual(w.ep.Fleets, []kiln.Fleet{blueBefore}) {
		t.Errorf("fleets %+v, want blue untouched", w.ep.Fleets)
	}
}

func TestInsufficientDataIsNotAlarm(t *testing.T) {
	w := created(t, c1)
	w.setAlarm("a", kiln.StateInsufficientData, "no data")
	w.update(c2, canaryConfig(pct(25), 60, 0, "a", "deleted"))
	w.settle()
	if w.ep.EndpointConfigName != "c2" || w.ep.FailureReason != "" {
		t.Fatalf("end: %s, failure %q", w.ep.EndpointConfigName, w.ep.FailureReason)
	}
}

// TestGreenLaunchFailure: green never becomes healthy and its launch fails;
// the update fails and blue is never touched.
func TestGreenLaunchFailure(t *testing.T) {
	w := created(t, c1)
	blueBefore := w.ep.Fleets[0]
	w.health = func(_ *world, f kiln.Fleet) FleetStatus {
		if f.EndpointConfigName == "c2" {
			return FleetStatus{Starting: f.InstanceCount, LaunchFailed: f.InstanceCount > 0, Reason: "instance 0 did not answer /ping within 60 s"}
		}
		return FleetStatus{Healthy: f.InstanceCount}
	}
	w.update(c2, canaryConfig(pct(25), 600, 0))
	w.settle()
	for _, r := range w.records {
		for _, f := range r.ep.Fleets {
			if f.ID == blueBefore.ID && !reflect.DeepEqual(f, blueBefore) {
				t.Fatalf("blue changed to %+v at %v", f, r.at.Sub(t0))
			}
		}
	}
	if w.ep.EndpointConfigName != "c1" || w.ep.EndpointStatus != kiln.StatusInService || len(w.ep.Fleets) != 1 {
		t.Fatalf("end: %s on %s with fleets %v", w.ep.EndpointStatus, w.ep.EndpointConfigName, fleetIDs(w.ep))
	}
	mustContain(t, w.ep.FailureReason, `new instances of variant "v" (endpoint config "c2") failed to launch: instance 0 did not answer /ping within 60 s`)
}

// TestGreenNeverHealthy: without a launch failure reported, the execution
// timeout rolls the update back.
func TestGreenNeverHealthy(t *testing.T) {
	w := created(t, c1)
	w.health = func(_ *world, f kiln.Fleet) FleetStatus {
		if f.EndpointConfigName == "c2" {
			return FleetStatus{Starting: f.InstanceCount}
		}
		return FleetStatus{Healthy: f.InstanceCount}
	}
	dc := canaryConfig(pct(25), 60, 0)
	dc.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds = 900
	w.update(c2, dc)
	w.settle()
	if d := w.now.Sub(t0); d != 900*time.Second {
		t.Errorf("rolled back after %v, want exactly the 900 s timeout", d)
	}
	if w.ep.EndpointConfigName != "c1" || w.ep.FailureReason != "Update rolled back because it did not complete within MaximumExecutionTimeoutInSeconds (900 seconds)." {
		t.Fatalf("end: %s, failure %q", w.ep.EndpointConfigName, w.ep.FailureReason)
	}
}

// TestTimeoutDuringBake: the timeout cuts a long bake short and rolls back.
func TestTimeoutDuringBake(t *testing.T) {
	w := created(t, c1)
	dc := linearConfig(pct(50), 3600, 0)
	dc.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds = 600
	w.update(c2, dc)
	green := w.ep.Deployment.Green
	w.settle()
	if d := w.now.Sub(t0); d != 600*time.Second {
		t.Errorf("rolled back after %v, want 600 s", d)
	}
	if got, want := w.shares(green, "v"), []float64{0, 0.5, 0}; !slices.Equal(got, want) {
		t.Errorf("shares %v, want %v", got, want)
	}
	mustContain(t, w.ep.FailureReason, "MaximumExecutionTimeoutInSeconds (600 seconds)")
}

func TestStop(t *testing.T) {
	w := created(t, c1)
	w.update(c2, canaryConfig(pct(25), 600, 0))
	green := w.ep.Deployment.Green
	w.until(func(ep kiln.Endpoint) bool { return ep.Deployment.Phase == kiln.PhaseBaking })
	ep, err := RequestStop(w.ep, "stopped by operator", w.now)
	if err != nil {
		t.Fatal(err)
	}
	if !ep.Deployment.StopRequested {
		t.Fatal("StopRequested not set")
	}
	again, err := RequestStop(ep, "stopped by operator", w.now)
	if err != nil || !reflect.DeepEqual(again, ep) {
		t.Fatalf("a second stop: %v", err)
	}
	w.ep = ep
	w.settle()
	if got, want := w.shares(green, "v"), []float64{0, 0.25, 0}; !slices.Equal(got, want) {
		t.Errorf("shares %v, want %v", got, want)
	}
	if w.ep.FailureReason != "Update rolled back because it was stopped by operator." || w.ep.EndpointConfigName != "c1" {
		t.Fatalf("end: %s, failure %q", w.ep.EndpointConfigName, w.ep.FailureReason)
	}
}

func TestStopFlagAlone(t *testing.T) {
	w := created(t, c1)
	w.update(c2, canaryConfig(pct(25), 600, 0))
	w.ep.Deployment.StopRequested = true
	w.settle()
	mustContain(t, w.ep.FailureReason, "stopped by operator")
}

func TestRequestStopRefusals(t *testing.T) {
	w := created(t, c1)
	if _, err := RequestStop(w.ep, "stopped by operator", t0); kiln.ErrorCode(err) != kiln.EINVALID {
		t.Errorf("stop without an update: %v, want EINVALID", err)
	} else {
		mustContain(t, err.Error(), "has no update in progress")
	}
	creating, _ := StartCreate(kiln.CreateEndpointInput{EndpointName: "ep"}, c1, testModels, testARN, t0)
	if _, err := RequestStop(creating, "", t0); kiln.ErrorCode(err) != kiln.EINVALID {
		t.Errorf("stop of a creation: %v, want EINVALID", err)
	}
	w.update(c2, canaryConfig(pct(25), 60, 60))
	w.until(func(ep kiln.Endpoint) bool { return ep.Deployment.Phase == kiln.PhaseTerminating })
	if _, err := RequestStop(w.ep, "rolled back by operator", w.now); kiln.ErrorCode(err) != kiln.ECONFLICT {
		t.Errorf("stop while terminating blue: %v, want ECONFLICT", err)
	}
}

func TestRollbackByOperatorReason(t *testing.T) {
	w := created(t, c1)
	w.update(c2, canaryConfig(pct(25), 600, 0))
	w.until(func(ep kiln.Endpoint) bool { return ep.Deployment.Phase == kiln.PhaseBaking })
	ep, err := RequestStop(w.ep, "rolled back by operator", w.now)
	if err != nil {
		t.Fatal(err)
	}
	w.ep = ep
	w.settle()
	if w.ep.FailureReason != "Update rolled back because it was rolled back by operator." {
		t.Errorf("FailureReason %q", w.ep.FailureReason)
	}
}

// TestRolling: batches of one instance replace a fleet of four; during each
// batch's bake the new instance shares traffic with all the old ones still
// running, in proportion to the instance counts.
func TestRolling(t *testing.T) {
	w := created(t, c1)
	blue := fleetIDs(w.ep)
	w.update(c2, rollingConfig(pct(25), nil, 60))
	green := w.ep.Deployment.Green
	w.settle()

	type counts struct{ g, ga, b, ba int }
	var got []counts
	for _, r := range w.records {
		var c counts
		for _, f := range r.ep.Fleets {
			if containsID(green, f.ID) {
				c.g, c.ga = f.InstanceCount, f.ActiveInstanceCount
			} else if containsID(blue, f.ID) {
				c.b, c.ba = f.InstanceCount, f.ActiveInstanceCount
			}
		}
		if len(got) == 0 || got[len(got)-1] != c {
			got = append(got, c)
		}
	}
	want := []counts{
		{0, 0, 4, 4},
		{1, 0, 4, 4}, {1, 1, 4, 4}, {1, 1, 4, 3}, {1, 1, 3, 3},
		{2, 1, 3, 3}, {2, 2, 3, 3}, {2, 2, 3, 2}, {2, 2, 2, 2},
		{3, 2, 2, 2}, {3, 3, 2, 2}, {3, 3, 2, 1}, {3, 3, 1, 1},
		{4, 3, 1, 1}, {4, 4, 1, 1}, {4, 4, 0, 0}, // the last old instance loses its share, then goes
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fleet counts (green, green active, blue, blue active):\n got %v\nwant %v", got, want)
	}
	if got, want := w.shares(green, "v"), []float64{0, 0.2, 0.25, 0.4, 0.5, 0.6, 0.75, 0.8, 1}; !slices.Equal(got, want) {
		t.Errorf("green shares %v, want %v", got, want)
	}
	if w.ep.EndpointConfigName != "c2" || !reflect.DeepEqual(fleetIDs(w.ep), green) {
		t.Fatalf("end: %s with fleets %v", w.ep.EndpointConfigName, fleetIDs(w.ep))
	}
	if d := w.now.Sub(t0); d < 4*time.Minute {
		t.Errorf("done after %v, want 4 bakes of 60 s", d)
	}
	msgs := w.statusMessages("v")
	for _, m := range []string{"Launching 1 instance(s).", "Baking for 60 seconds (WaitIntervalInSeconds) with traffic enabled on new capacity of 2 instance(s).", "Terminating 1 instance(s)."} {
		if !hasMessage(msgs, m) {
			t.Errorf("messages %q lack %q", msgs, m)
		}
	}
}

// TestRollingRollbackInBatches: after two of four batches an alarm fires;
// the old fleet comes back one instance at a time, each batch retiring one
// new instance.
func TestRollingRollbackInBatches(t *testing.T) {
	w := created(t, c1)
	blue := fleetIDs(w.ep)
	w.update(c2, rollingConfig(pct(25), count(1), 60, "a"))
	green := w.ep.Deployment.Green
	w.until(func(ep kiln.Endpoint) bool {
		f := ep.Fleets[0]
		return f.ID == blue[0] && f.InstanceCount == 2 && ep.Deployment.Phase == kiln.PhaseBaking
	})
	w.setAlarm("a", kiln.StateAlarm, "errors")
	n := len(w.records)
	w.settle()

	type counts struct{ g, ga, b, ba int }
	var got []counts
	for _, r := range w.records[n:] {
		var c counts
		for _, f := range r.ep.Fleets {
			if containsID(green, f.ID) {
				c.g, c.ga = f.InstanceCount, f.ActiveInstanceCount
			} else {
				c.b, c.ba = f.InstanceCount, f.ActiveInstanceCount
			}
		}
		if len(got) == 0 || got[len(got)-1] != c {
			got = append(got, c)
		}
	}
	// Baking batch 3 when the alarm fired: 3 new, 2 old.
	want := []counts{
		{3, 3, 3, 2}, // rolling back: one old instance launched
		{3, 1, 3, 3}, // it takes traffic; new instances beyond what the old capacity needs lose theirs
		{1, 1, 3, 3}, // and are stopped
		{1, 1, 4, 3},
		{1, 1, 4, 4}, // all traffic back on the old fleet (the new one's share is 0)
		{0, 0, 4, 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rollback counts (green, green active, blue, blue active):\n got %v\nwant %v", got, want)
	}
	if w.ep.EndpointConfigName != "c1" || w.ep.EndpointStatus != kiln.StatusInService || !reflect.DeepEqual(fleetIDs(w.ep), blue) {
		t.Fatalf("end: %s on %s with %v", w.ep.EndpointStatus, w.ep.EndpointConfigName, fleetIDs(w.ep))
	}
	mustContain(t, w.ep.FailureReason, `alarm "a" is in ALARM`)
}

func TestRollingRollbackAllAtOnce(t *testing.T) {
	w := created(t, c1)
	w.update(c2, rollingConfig(pct(25), nil, 60, "a"))
	w.until(func(ep kiln.Endpoint) bool {
		return ep.Fleets[0].InstanceCount == 2 && ep.Deployment.Phase == kiln.PhaseBaking
	})
	w.setAlarm("a", kiln.StateAlarm, "errors")
	n := len(w.records)
	w.settle()
	// Launch the two missing old instances at once, swap, stop the new.
	if got := len(w.records) - n; got != 4 {
		t.Errorf("rollback took %d writes, want 4 (launch, swap, stop new, done)", got)
	}
	if w.ep.EndpointConfigName != "c1" || w.ep.Fleets[0].InstanceCount != 4 {
		t.Fatalf("end: %s with %+v", w.ep.EndpointConfigName, w.ep.Fleets)
	}
}

// TestRollingRollbackFails: the old instances cannot come back.
func TestRollingRollbackFails(t *testing.T) {
	w := created(t, c1)
	w.update(c2, rollingConfig(pct(50), nil, 60, "a"))
	w.until(func(ep kiln.Endpoint) bool {
		return ep.Fleets[0].InstanceCount == 2 && ep.Deployment.Phase == kiln.PhaseBaking
	})
	w.setAlarm("a", kiln.StateAlarm, "errors")
	w.health = func(_ *world, f kiln.Fleet) FleetStatus {
		if f.EndpointConfigName == "c1" && f.InstanceCount > f.ActiveInstanceCount {
			return FleetStatus{Healthy: f.ActiveInstanceCount, LaunchFailed: true, Reason: "image gone"}
		}
		return FleetStatus{Healthy: f.InstanceCount}
	}
	w.settle()
	if w.ep.EndpointStatus != kiln.StatusUpdateRollbackFailed {
		t.Fatalf("status %s, want UpdateRollbackFailed", w.ep.EndpointStatus)
	}
	mustContain(t, w.ep.FailureReason, "Rolling back failed too")
	mustContain(t, w.ep.FailureReason, "image gone")
	for _, f := range w.ep.Fleets {
		if f.InstanceCount != f.ActiveInstanceCount {
			t.Errorf("fleet %+v still launching", f)
		}
	}
	if _, err := StartUpdate(w.ep, c2, testModels, kiln.UpdateEndpointInput{}, nil, w.now); kiln.ErrorCode(err) != kiln.EINVALID {
		t.Errorf("update of an UpdateRollbackFailed endpoint: %v, want EINVALID", err)
	}
}

func TestRollingResize(t *testing.T) {
	w := created(t, c1)
	w.update(config("c3", pv{name: "v", model: "m2", count: 2}), rollingConfig(pct(50), nil, 10))
	w.settle()
	if w.ep.EndpointConfigName != "c3" || len(w.ep.Fleets) != 1 || w.ep.Fleets[0].InstanceCount != 2 {
		t.Fatalf("end: %s with %+v", w.ep.EndpointConfigName, w.ep.Fleets)
	}
	if pv := w.ep.ProductionVariants[0]; pv.CurrentInstanceCount != 2 || pv.DesiredInstanceCount != 2 {
		t.Errorf("variant %+v", pv)
	}
}

// TestLockstep: two variants of different sizes shift together; the
// smaller one holds its last step until the larger one is done.
func TestLockstep(t *testing.T) {
	two := func(name, model string) kiln.EndpointConfig {
		return config(name, pv{name: "a", model: model, count: 4}, pv{name: "b", model: model, count: 2, weight: 3})
	}
	w := created(t, two("c1", "m1"))
	w.update(two("c2", "m2"), linearConfig(pct(25), 60, 0))
	green := w.ep.Deployment.Green
	w.settle()
	if got, want := w.shares(green, "a"), []float64{0, 0.25, 0.5, 0.75, 1}; !slices.Equal(got, want) {
		t.Errorf("a: %v, want %v", got, want)
	}
	if got, want := w.shares(green, "b"), []float64{0, 0.5, 1}; !slices.Equal(got, want) {
		t.Errorf("b: %v, want %v", got, want)
	}
	// Both start moving in the same write.
	r, _ := w.firstRecord(func(ep kiln.Endpoint) bool { return greenShareOf(ep, green, "a") > 0 })
	if greenShareOf(r.ep, green, "b") != 0.5 {
		t.Errorf("b's share when a first moved: %v", greenShareOf(r.ep, green, "b"))
	}
	if w.ep.EndpointConfigName != "c2" || len(w.ep.Fleets) != 2 {
		t.Fatalf("end: %s with %v", w.ep.EndpointConfigName, fleetIDs(w.ep))
	}
	if w.ep.ProductionVariants[1].CurrentWeight != 3 {
		t.Errorf("weights %+v", w.ep.ProductionVariants)
	}
}

// TestAllAtOnceChangesVariants: a variant is added and another removed;
// weights switch with the traffic and switch back on rollback.
func TestAllAtOnceChangesVariants(t *testing.T) {
	old := config("c1", pv{name: "a", model: "m1", count: 2}, pv{name: "b", model: "m1", count: 1})
	next := config("c2", pv{name: "a", model: "m2", count: 2}, pv{name: "c", model: "m2", count: 1, weight: 2})
	for _, rollback := range []bool{false, true} {
		t.Run(map[bool]string{false: "done", true: "rolled back"}[rollback], func(t *testing.T) {
			w := created(t, old)
			w.update(next, allAtOnceConfig(60, 0, "a1"))
			w.until(func(ep kiln.Endpoint) bool { return ep.Deployment.Phase == kiln.PhaseBaking })
			weights := map[string]float64{}
			for _, pv := range w.ep.ProductionVariants {
				weights[pv.VariantName] = pv.CurrentWeight
			}
			if want := map[string]float64{"a": 1, "b": 0, "c": 2}; !reflect.DeepEqual(weights, want) {
				t.Errorf("weights while baking %v, want %v", weights, want)
			}
			if rollback {
				w.setAlarm("a1", kiln.StateAlarm, "x")
			}
			w.settle()
			var names []string
			for _, pv := range w.ep.ProductionVariants {
				names = append(names, pv.VariantName)
			}
			want := []string{"a", "c"}
			if rollback {
				want = []string{"a", "b"}
			}
			if !slices.Equal(names, want) || len(w.ep.Fleets) != 2 {
				t.Fatalf("variants %v with fleets %v, want %v", names, fleetIDs(w.ep), want)
			}
		})
	}
}

func TestWeights(t *testing.T) {
	w := created(t, config("c1", pv{name: "a", model: "m1", count: 2}, pv{name: "b", model: "m1", count: 2}))
	three, one, half := 3, 1, 0.5
	ep, err := StartWeights(w.ep, []kiln.DesiredWeightAndCapacity{
		{VariantName: "a", DesiredInstanceCount: &three},
		{VariantName: "b", DesiredWeight: &half, DesiredInstanceCount: &one},
	}, w.now)
	if err != nil {
		t.Fatal(err)
	}
	if ep.EndpointStatus != kiln.StatusUpdating || ep.ProductionVariants[1].DesiredWeight != 0.5 || ep.ProductionVariants[1].CurrentWeight != 1 {
		t.Fatalf("StartWeights gave %+v", ep.ProductionVariants)
	}
	w.ep = ep
	w.settle()
	got := map[string][2]int{}
	for _, f := range w.ep.Fleets {
		got[f.VariantName] = [2]int{f.InstanceCount, f.ActiveInstanceCount}
	}
	if want := map[string][2]int{"a": {3, 3}, "b": {1, 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("fleets %v, want %v", got, want)
	}
	pvs := w.ep.ProductionVariants
	if pvs[0].CurrentInstanceCount != 3 || pvs[1].CurrentWeight != 0.5 || pvs[1].CurrentInstanceCount != 1 || w.ep.EndpointStatus != kiln.StatusInService {
		t.Errorf("variants %+v", pvs)
	}
	// The new instance of a was healthy before any traffic changed, and b's
	// extra instance lost its traffic before it stopped.
	for _, r := range w.records {
		for _, f := range r.ep.Fleets {
			if f.VariantName == "b" && f.InstanceCount == 1 && f.ActiveInstanceCount != 1 {
				t.Errorf("b stopped an instance with traffic: %+v", f)
			}
		}
	}
}

func TestWeightsLaunchFailureReverts(t *testing.T) {
	w := created(t, config("c1", pv{name: "a", model: "m1", count: 2}))
	before := w.ep.Fleets
	w.health = func(_ *world, f kiln.Fleet) FleetStatus {
		return FleetStatus{Healthy: min(f.InstanceCount, 2), LaunchFailed: f.InstanceCount > 2, Reason: "no room"}
	}
	four, w2 := 4, 2.0
	ep, err := StartWeights(w.ep, []kiln.DesiredWeightAndCapacity{{VariantName: "a", DesiredInstanceCount: &four, DesiredWeight: &w2}}, w.now)
	if err != nil {
		t.Fatal(err)
	}
	w.ep = ep
	w.settle()
	if !reflect.DeepEqual(w.ep.Fleets, before) || w.ep.ProductionVariants[0].CurrentWeight != 1 || w.ep.EndpointStatus != kiln.StatusInService {
		t.Fatalf("after a failed scale-up: %+v %+v", w.ep.Fleets, w.ep.ProductionVariants)
	}
	mustContain(t, w.ep.FailureReason, "no room")
}

func TestRetainAllVariantProperties(t *testing.T) {
	w := created(t, config("c1", pv{name: "v", model: "m1", count: 2, weight: 2}))
	three := 3
	ep, err := StartWeights(w.ep, []kiln.DesiredWeightAndCapacity{{VariantName: "v", DesiredInstanceCount: &three}}, w.now)
	if err != nil {
		t.Fatal(err)
	}
	w.ep = ep
	w.settle()
	in := kiln.UpdateEndpointInput{EndpointConfigName: "c2", RetainAllVariantProperties: true}
	ep, err = StartUpdate(w.ep, c2, testModels, in, nil, w.now)
	if err != nil {
		t.Fatal(err)
	}
	if tg := ep.Deployment.Target[0]; tg.DesiredInstanceCount != 3 || tg.DesiredWeight != 2 {
		t.Errorf("retained target %+v, want 3 instances with weight 2", tg)
	}
	in.ExcludeRetainedVariantProperties = []kiln.VariantProperty{{VariantPropertyType: "DesiredInstanceCount"}}
	ep, err = StartUpdate(w.ep, c2, testModels, in, nil, w.now)
	if err != nil {
		t.Fatal(err)
	}
	if tg := ep.Deployment.Target[0]; tg.DesiredInstanceCount != 4 || tg.DesiredWeight != 2 {
		t.Errorf("target %+v, want the config's 4 instances with the kept weight 2", tg)
	}
}

func TestRetainDeploymentConfig(t *testing.T) {
	dc := canaryConfig(pct(25), 60, 0)
	ep, err := StartCreate(kiln.CreateEndpointInput{EndpointName: "ep", DeploymentConfig: dc}, c1, testModels, testARN, t0)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, ep)
	w.settle()
	next, err := StartUpdate(w.ep, c2, testModels, kiln.UpdateEndpointInput{RetainDeploymentConfig: true}, nil, w.now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(next.Deployment.DeploymentConfig, dc) {
		t.Errorf("deployment config %+v, want the retained %+v", next.Deployment.DeploymentConfig, dc)
	}
}

// TestNextIsPureAndIdempotent: the same inputs give the same outputs, and a
// settled record is left alone.
func TestNextIsPureAndIdempotent(t *testing.T) {
	w := created(t, c1)
	ep, events, wake, err := Next(w.ep, Observation{}, t0)
	if err != nil || len(events) != 0 || !wake.IsZero() || !reflect.DeepEqual(ep, w.ep) {
		t.Fatalf("Next of a settled endpoint: %v %v %v", events, wake, err)
	}
	w.update(c2, canaryConfig(pct(25), 600, 0))
	obs := w.observe()
	a, ea, wa, err1 := Next(w.ep, obs, t0)
	b, eb, wb, err2 := Next(w.ep, obs, t0)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) || !reflect.DeepEqual(ea, eb) || !wa.Equal(wb) {
		t.Fatal("two calls with the same inputs differ")
	}
}

func TestNextRefusesIllegalRecords(t *testing.T) {
	w := created(t, c1)
	w.update(c2, canaryConfig(pct(25), 600, 0))
	tests := []struct {
		name   string
		mutate func(*kiln.Endpoint)
		errSub string
	}{
		{"unknown kind", func(ep *kiln.Endpoint) { ep.Deployment.Kind = "Sideways" }, `unknown kind "Sideways"`},
		{"step past the end", func(ep *kiln.Endpoint) { ep.Deployment.Step = 99 }, "at step 99"},
		{"negative step", func(ep *kiln.Endpoint) { ep.Deployment.Step = -1 }, "at step -1"},
		{"green fleet gone", func(ep *kiln.Endpoint) { ep.Fleets = ep.Fleets[:1] }, "missing"},
		{"fleet of an unknown variant", func(ep *kiln.Endpoint) { ep.Fleets[1].VariantName = "zz" }, "does not know"},
		{"old fleet gone during rollback", func(ep *kiln.Endpoint) {
			ep.Deployment.Phase = kiln.PhaseRollingBack
			ep.Fleets = ep.Fleets[1:]
		}, "old fleet is gone"},
		{"a config beyond its limits", func(ep *kiln.Endpoint) {
			ep.Deployment.DeploymentConfig.BlueGreenUpdatePolicy.TerminationWaitInSeconds = 99999
		}, "TerminationWaitInSeconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := cloneEndpoint(w.ep)
			tt.mutate(&ep)
			_, _, _, err := Next(ep, w.observe(), w.now)
			if err == nil || !strings.Contains(err.Error(), tt.errSub) {
				t.Fatalf("got %v, want an error containing %q", err, tt.errSub)
			}
		})
	}
}

// TestBakeWakeUp: while baking, Next asks to be called at the bake's end,
// and does nothing before.
func TestBakeWakeUp(t *testing.T) {
	w := created(t, c1)
	w.update(c2, canaryConfig(pct(25), 600, 0))
	w.until(func(ep kiln.Endpoint) bool { return ep.Deployment.Phase == kiln.PhaseBaking })
	start := w.now
	changed, wake := w.look()
	if changed || !wake.Equal(start.Add(600*time.Second)) {
		t.Fatalf("while baking: changed %v, wake %v; want no change and the bake's end", changed, wake.Sub(start))
	}
	w.now = start.Add(599 * time.Second)
	if changed, _ := w.look(); changed {
		t.Fatal("moved on a second before the bake's end")
	}
	w.now = start.Add(600 * time.Second)
	if changed, _ := w.look(); !changed {
		t.Fatal("did not move on at the bake's end")
	}
}

// TestTrafficOnlyToHealthyInstances: instances take 30 s to pass their
// health check; no record ever gives traffic to an instance before then,
// and no instance is stopped while it still has traffic.
func TestTrafficOnlyToHealthyInstances(t *testing.T) {
	for _, dc := range []*kiln.DeploymentConfig{
		canaryConfig(pct(25), 60, 60),
		linearConfig(pct(50), 60, 0),
		rollingConfig(pct(25), nil, 60),
	} {
		w := created(t, c1)
		launched := map[string][]time.Time{}
		seen := func(ep kiln.Endpoint, at time.Time) {
			for _, f := range ep.Fleets {
				l := launched[f.ID]
				for len(l) < f.InstanceCount {
					l = append(l, at)
				}
				launched[f.ID] = l[:f.InstanceCount]
			}
		}
		seen(w.ep, t0.Add(-time.Hour))
		healthy := func(id string, n int, now time.Time) int {
			h := 0
			for _, at := range launched[id][:min(n, len(launched[id]))] {
				if now.Sub(at) >= 30*time.Second {
					h++
				}
			}
			return h
		}
		w.health = func(w *world, f kiln.Fleet) FleetStatus {
			h := healthy(f.ID, f.InstanceCount, w.now)
			return FleetStatus{Healthy: h, Starting: f.InstanceCount - h}
		}
		w.update(c2, dc)
		seen(w.ep, w.now)
		prev := w.ep
		for w.ep.Deployment != nil {
			changed, wake := w.look()
			if !changed {
				// Health changes as time passes: look every second, as the
				// controller does, or at the wake-up if sooner.
				next := w.now.Add(time.Second)
				if wake.After(w.now) && wake.Before(next) {
					next = wake
				}
				w.now = next
				continue
			}
			seen(w.ep, w.now)
			for _, f := range w.ep.Fleets {
				if f.TrafficShare > 0 && healthy(f.ID, f.ActiveInstanceCount, w.now) < f.ActiveInstanceCount {
					t.Fatalf("%v: fleet %s routes to %d instances, only %d healthy", w.now.Sub(t0), f.ID, f.ActiveInstanceCount, healthy(f.ID, f.ActiveInstanceCount, w.now))
				}
			}
			for _, old := range prev.Fleets {
				stillThere := false
				for _, f := range w.ep.Fleets {
					if f.ID == old.ID {
						stillThere = true
						if f.InstanceCount < old.InstanceCount && old.ActiveInstanceCount > f.InstanceCount && old.TrafficShare > 0 {
							t.Fatalf("fleet %s stopped instances that had traffic: %+v → %+v", f.ID, old, f)
						}
					}
				}
				if !stillThere && old.TrafficShare > 0 {
					t.Fatalf("fleet %s removed while it had a share of %v", old.ID, old.TrafficShare)
				}
			}
			prev = w.ep
		}
		if w.ep.EndpointConfigName != "c2" {
			t.Fatalf("ended on %s (%s)", w.ep.EndpointConfigName, w.ep.FailureReason)
		}
	}
}

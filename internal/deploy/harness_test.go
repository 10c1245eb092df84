package deploy

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// t0 is when every scenario starts.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testARN = "arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep"

var testModels = map[string]kiln.Model{
	"m1": {ModelName: "m1", PrimaryContainer: &kiln.ContainerDef{Image: "serve --version 1"}},
	"m2": {ModelName: "m2", PrimaryContainer: &kiln.ContainerDef{Image: "serve --version 2", Environment: map[string]string{"A": "b"}}},
}

type pv struct {
	name, model string
	count       int
	weight      float64
}

func config(name string, vs ...pv) kiln.EndpointConfig {
	c := kiln.EndpointConfig{EndpointConfigName: name}
	for _, v := range vs {
		w := v.weight
		if w == 0 {
			w = 1
		}
		c.ProductionVariants = append(c.ProductionVariants, kiln.ProductionVariant{
			VariantName: v.name, ModelName: v.model, InitialInstanceCount: v.count, InitialVariantWeight: &w,
		})
	}
	return c
}

func pct(v int) *kiln.CapacitySize   { return &kiln.CapacitySize{Type: kiln.CapacityPercent, Value: v} }
func count(v int) *kiln.CapacitySize { return &kiln.CapacitySize{Type: kiln.InstanceCount, Value: v} }

func alarms(names ...string) *kiln.AutoRollbackConfiguration {
	ar := &kiln.AutoRollbackConfiguration{}
	for _, n := range names {
		ar.Alarms = append(ar.Alarms, kiln.AlarmRef{AlarmName: n})
	}
	return ar
}

func canaryConfig(size *kiln.CapacitySize, wait, term int, alarmNames ...string) *kiln.DeploymentConfig {
	dc := &kiln.DeploymentConfig{BlueGreenUpdatePolicy: &kiln.BlueGreenUpdatePolicy{
		TrafficRoutingConfiguration: &kiln.TrafficRoutingConfig{Type: kiln.Canary, WaitIntervalInSeconds: wait, CanarySize: size},
		TerminationWaitInSeconds:    term,
	}}
	if len(alarmNames) > 0 {
		dc.AutoRollbackConfiguration = alarms(alarmNames...)
	}
	return dc
}

func linearConfig(size *kiln.CapacitySize, wait, term int, alarmNames ...string) *kiln.DeploymentConfig {
	dc := &kiln.DeploymentConfig{BlueGreenUpdatePolicy: &kiln.BlueGreenUpdatePolicy{
		TrafficRoutingConfiguration: &kiln.TrafficRoutingConfig{Type: kiln.Linear, WaitIntervalInSeconds: wait, LinearStepSize: size},
		TerminationWaitInSeconds:    term,
	}}
	if len(alarmNames) > 0 {
		dc.AutoRollbackConfiguration = alarms(alarmNames...)
	}
	return dc
}

func allAtOnceConfig(wait, term int, alarmNames ...string) *kiln.DeploymentConfig {
	dc := &kiln.DeploymentConfig{BlueGreenUpdatePolicy: &kiln.BlueGreenUpdatePolicy{
		TrafficRoutingConfiguration: &kiln.TrafficRoutingConfig{Type: kiln.AllAtOnce, WaitIntervalInSeconds: wait},
		TerminationWaitInSeconds:    term,
	}}
	if len(alarmNames) > 0 {
		dc.AutoRollbackConfiguration = alarms(alarmNames...)
	}
	return dc
}

func rollingConfig(batch, rollback *kiln.CapacitySize, wait int, alarmNames ...string) *kiln.DeploymentConfig {
	dc := &kiln.DeploymentConfig{RollingUpdatePolicy: &kiln.RollingUpdatePolicy{
		MaximumBatchSize: batch, WaitIntervalInSeconds: wait, RollbackMaximumBatchSize: rollback,
	}}
	if len(alarmNames) > 0 {
		dc.AutoRollbackConfiguration = alarms(alarmNames...)
	}
	return dc
}

// world is what the controller would see: the stored record, instance
// health and alarm states, and a clock that jumps to each wake-up. It
// drives Next as the Controller does, without a store.
type world struct {
	t   *testing.T
	now time.Time
	ep  kiln.Endpoint
	// health reports a fleet's status; nil means every instance is
	// healthy at once.
	health func(w *world, f kiln.Fleet) FleetStatus
	alarms map[string]kiln.AlarmState
	// answered counts the requests a new fleet answered since a bake
	// began, as the Controller's Requests does; nil counts nothing.
	answered func(w *world, f kiln.Fleet, since time.Time) int
	// every record written, with the time it was written
	records []record
	history []kiln.HistoryEvent
	// before each look, if set (alarm changes, stops)
	hook func(w *world)
	// changesAt lists when the hook changes what is observed, so that the
	// clock stops there rather than jumping past to the next wake-up.
	changesAt []time.Time
}

type record struct {
	at time.Time
	ep kiln.Endpoint
}

func newWorld(t *testing.T, ep kiln.Endpoint) *world {
	t.Helper()
	return &world{t: t, now: t0, ep: ep, alarms: map[string]kiln.AlarmState{}}
}

// created returns a world with an endpoint on cfg, InService.
func created(t *testing.T, cfg kiln.EndpointConfig) *world {
	t.Helper()
	ep, err := StartCreate(kiln.CreateEndpointInput{EndpointName: "ep", EndpointConfigName: cfg.EndpointConfigName}, cfg, testModels, testARN, t0)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, ep)
	w.settle()
	if w.ep.EndpointStatus != kiln.StatusInService {
		t.Fatalf("created endpoint is %s (%s), want InService", w.ep.EndpointStatus, w.ep.FailureReason)
	}
	w.records, w.history = nil, nil
	return w
}

func (w *world) observe() Observation {
	obs := Observation{Fleets: map[string]FleetStatus{}, Alarms: map[string]kiln.AlarmState{}}
	for _, f := range w.ep.Fleets {
		if w.health != nil {
			obs.Fleets[f.ID] = w.health(w, f)
		} else {
			obs.Fleets[f.ID] = FleetStatus{Healthy: f.InstanceCount}
		}
	}
	for k, v := range w.alarms {
		obs.Alarms[k] = v
	}
	if d := w.ep.Deployment; d != nil && d.Phase == kiln.PhaseBaking && w.answered != nil {
		obs.Answered = map[string]int{}
		for _, f := range w.ep.Fleets {
			if containsID(d.Green, f.ID) {
				obs.Answered[f.ID] = w.answered(w, f, d.PhaseStartTime)
			}
		}
	}
	return obs
}

// look calls Next once, as a controller would, and stores what it returns.
// It reports whether the record changed, and the wake-up time.
func (w *world) look() (bool, time.Time) {
	w.t.Helper()
	if w.hook != nil {
		w.hook(w)
	}
	before := cloneEndpoint(w.ep)
	next, events, wake, err := Next(w.ep, w.observe(), w.now)
	if err != nil {
		w.t.Fatalf("Next at %v: %v", w.now.Sub(t0), err)
	}
	if !reflect.DeepEqual(before, w.ep) {
		w.t.Fatalf("Next changed the record it was given")
	}
	if reflect.DeepEqual(next, w.ep) {
		if len(events) != 0 {
			w.t.Fatalf("Next returned events %+v without a change", events)
		}
		return false, wake
	}
	if len(events) == 0 && next.Deployment != nil && w.ep.Deployment != nil && next.Deployment.Phase == w.ep.Deployment.Phase && next.Deployment.Step == w.ep.Deployment.Step {
		w.t.Logf("a change without an event at %v", w.now.Sub(t0))
	}
	// What is stored goes through JSON, as in the real store.
	b, err := json.Marshal(next)
	if err != nil {
		w.t.Fatal(err)
	}
	var stored kiln.Endpoint
	if err := json.Unmarshal(b, &stored); err != nil {
		w.t.Fatal(err)
	}
	w.ep = stored
	w.records = append(w.records, record{at: w.now, ep: stored})
	w.history = append(w.history, events...)
	checkInvariants(w.t, stored)
	return true, wake
}

// settle runs until the endpoint has no deployment (or fails the test
// after a long simulated time).
func (w *world) settle() {
	w.t.Helper()
	w.until(func(ep kiln.Endpoint) bool { return ep.Deployment == nil })
}

// until runs until cond holds of the record. Without a change the clock
// jumps to the wake-up time Next gave, or by a second (the controller's
// periodic look) when it gave none.
func (w *world) until(cond func(kiln.Endpoint) bool) {
	w.t.Helper()
	for i := 0; ; i++ {
		if cond(w.ep) {
			return
		}
		if i > 100000 || w.now.Sub(t0) > 48*time.Hour {
			w.t.Fatalf("no end after %d looks, %v simulated; record %+v", i, w.now.Sub(t0), w.ep.Deployment)
		}
		changed, wake := w.look()
		if changed {
			continue
		}
		next := w.now.Add(time.Second)
		switch {
		case !wake.IsZero() && wake.After(w.now):
			next = wake
		case !wake.IsZero():
			w.t.Fatalf("Next made no change but asked to be called again at once (%v)", w.ep.Deployment)
		}
		for _, c := range w.changesAt {
			if c.After(w.now) && c.Before(next) {
				next = c
			}
		}
		w.now = next
	}
}

// update starts an update and returns the world.
func (w *world) update(cfg kiln.EndpointConfig, dc *kiln.DeploymentConfig) {
	w.t.Helper()
	ep, err := StartUpdate(w.ep, cfg, testModels, kiln.UpdateEndpointInput{EndpointName: "ep", EndpointConfigName: cfg.EndpointConfigName, DeploymentConfig: dc},
		func(string) bool { return true }, w.now)
	if err != nil {
		w.t.Fatalf("StartUpdate: %v", err)
	}
	w.ep = ep
	w.records = append(w.records, record{at: w.now, ep: ep})
	checkInvariants(w.t, ep)
}

func (w *world) setAlarm(name, state, reason string) {
	w.alarms[name] = kiln.AlarmState{StateValue: state, StateReason: reason, StateUpdatedTimestamp: w.now}
}

// checkInvariants holds of every record ever written.
func checkInvariants(t *testing.T, ep kiln.Endpoint) {
	t.Helper()
	weights := map[string]float64{}
	for _, pv := range ep.ProductionVariants {
		weights[pv.VariantName] = pv.CurrentWeight
	}
	shares := map[string]float64{}
	for _, f := range ep.Fleets {
		if f.ActiveInstanceCount < 0 || f.ActiveInstanceCount > f.InstanceCount {
			t.Fatalf("fleet %s has %d active of %d instances", f.ID, f.ActiveInstanceCount, f.InstanceCount)
		}
		if f.TrafficShare < 0 || f.TrafficShare > 1 {
			t.Fatalf("fleet %s has share %v", f.ID, f.TrafficShare)
		}
		if f.TrafficShare > 0 && weights[f.VariantName] > 0 && f.ActiveInstanceCount == 0 {
			t.Fatalf("fleet %s gets traffic (share %v) with no active instance", f.ID, f.TrafficShare)
		}
		if _, ok := weights[f.VariantName]; !ok {
			t.Fatalf("fleet %s belongs to variant %q, which the endpoint does not show", f.ID, f.VariantName)
		}
		shares[f.VariantName] += f.TrafficShare
	}
	for v, s := range shares {
		if math.Abs(s-1) > 1e-9 {
			t.Fatalf("variant %q fleets' shares add up to %v", v, s)
		}
	}
	if d := ep.Deployment; d != nil {
		want := kiln.StatusUpdating
		if d.Kind == kiln.DeployCreate {
			want = kiln.StatusCreating
		}
		if ep.EndpointStatus != want {
			t.Fatalf("status %s during a %s deployment, want %s", ep.EndpointStatus, d.Kind, want)
		}
	}
}

// greenShareOf is the share of a variant's traffic on the deployment's new
// fleets in a record.
func greenShareOf(ep kiln.Endpoint, green []string, variant string) float64 {
	s := 0.0
	for _, f := range ep.Fleets {
		if f.VariantName == variant && containsID(green, f.ID) {
			s += f.TrafficShare
		}
	}
	return s
}

func containsID(list []string, id string) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}

// shares lists the distinct consecutive green shares of a variant over the
// records of one deployment.
func (w *world) shares(green []string, variant string) []float64 {
	var out []float64
	for _, r := range w.records {
		s := greenShareOf(r.ep, green, variant)
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// firstRecord returns the first record matching cond.
func (w *world) firstRecord(cond func(kiln.Endpoint) bool) (record, bool) {
	for _, r := range w.records {
		if cond(r.ep) {
			return r, true
		}
	}
	return record{}, false
}

func variantStatus(ep kiln.Endpoint, variant string) kiln.VariantStatus {
	for _, pv := range ep.ProductionVariants {
		if pv.VariantName == variant && len(pv.VariantStatus) > 0 {
			return pv.VariantStatus[0]
		}
	}
	return kiln.VariantStatus{}
}

// statusMessages lists the distinct status messages a variant showed.
func (w *world) statusMessages(variant string) []string {
	var out []string
	for _, r := range w.records {
		st := variantStatus(r.ep, variant)
		if st.StatusMessage != "" && (len(out) == 0 || out[len(out)-1] != st.StatusMessage) {
			out = append(out, st.StatusMessage)
		}
	}
	return out
}

func hasMessage(msgs []string, want string) bool {
	for _, m := range msgs {
		if m == want {
			return true
		}
	}
	return false
}

func fleetIDs(ep kiln.Endpoint) []string {
	var ids []string
	for _, f := range ep.Fleets {
		ids = append(ids, f.ID)
	}
	return ids
}

func mustContain(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("got %q, want it to contain %q", got, want)
	}
}

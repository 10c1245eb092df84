package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memStore is an in-memory Store with revisions, as the real one behaves:
// compare-and-swap on the revision, records copied through JSON.
type memStore struct {
	mu      sync.Mutex
	rev     int64
	eps     map[string][]byte
	revs    map[string]int64
	history map[string][]kiln.HistoryEvent
	puts    int
	// conflicts makes the controller's next n puts fail as if someone
	// wrote first.
	conflicts int
	// rolledBackAt is when a rollback was first written.
	rolledBackAt time.Time
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{eps: map[string][]byte{}, revs: map[string]int64{}, history: map[string][]kiln.HistoryEvent{}}
}

func (s *memStore) GetEndpoint(_ context.Context, name string) (kiln.Endpoint, int64, error) {
	s.mu.Lock()
	b, ok := s.eps[name]
	rev := s.revs[name]
	s.mu.Unlock()
	if !ok {
		return kiln.Endpoint{}, 0, kiln.Errorf(kiln.ENOTFOUND, "Could not find endpoint %q.", name)
	}
	var ep kiln.Endpoint
	err := json.Unmarshal(b, &ep)
	return ep, rev, err
}

func (s *memStore) PutEndpoint(_ context.Context, ep kiln.Endpoint, ifRevision int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conflicts > 0 {
		s.conflicts--
		s.rev++
		s.revs[ep.EndpointName] = s.rev
		return 0, fmt.Errorf("put %s: %w", ep.EndpointName, ErrConflict)
	}
	if s.revs[ep.EndpointName] != ifRevision {
		return 0, fmt.Errorf("put %s at %d, is at %d: %w", ep.EndpointName, ifRevision, s.revs[ep.EndpointName], ErrConflict)
	}
	b, err := json.Marshal(ep)
	if err != nil {
		return 0, err
	}
	s.rev++
	s.eps[ep.EndpointName], s.revs[ep.EndpointName] = b, s.rev
	s.puts++
	if ep.Deployment != nil && ep.Deployment.Phase == kiln.PhaseRollingBack && s.rolledBackAt.IsZero() {
		s.rolledBackAt = time.Now()
	}
	return s.rev, nil
}

func (s *memStore) AppendHistory(_ context.Context, endpoint string, ev []kiln.HistoryEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history[endpoint] = append(s.history[endpoint], ev...)
	return nil
}

func (s *memStore) ListEndpoints(ctx context.Context) ([]kiln.Endpoint, error) {
	s.mu.Lock()
	var names []string
	for name := range s.eps {
		names = append(names, name)
	}
	s.mu.Unlock()
	var out []kiln.Endpoint
	for _, name := range names {
		ep, _, err := s.GetEndpoint(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, ep)
	}
	return out, nil
}

// change applies f to a record, as the API layer does.
func (s *memStore) change(t *testing.T, name string, f func(kiln.Endpoint) (kiln.Endpoint, error)) {
	t.Helper()
	ep, rev, err := s.GetEndpoint(context.Background(), name)
	if err != nil && kiln.ErrorCode(err) != kiln.ENOTFOUND {
		t.Fatal(err)
	}
	next, err := f(ep)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	conflicts := s.conflicts
	s.conflicts = 0
	s.mu.Unlock()
	_, err = s.PutEndpoint(context.Background(), next, rev)
	s.mu.Lock()
	s.conflicts = conflicts
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}

func (s *memStore) get(t *testing.T, name string) kiln.Endpoint {
	t.Helper()
	ep, _, err := s.GetEndpoint(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// memFleets reports every instance of the stored record healthy, except
// for the fleets of configs told to fail.
type memFleets struct {
	s       *memStore
	mu      sync.Mutex
	failing map[string]string // endpoint config → launch failure reason
}

func (f *memFleets) FleetStatus(endpoint, fleetID string) FleetStatus {
	ep, _, err := f.s.GetEndpoint(context.Background(), endpoint)
	if err != nil {
		return FleetStatus{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range ep.Fleets {
		if fl.ID == fleetID {
			if reason, ok := f.failing[fl.EndpointConfigName]; ok && fl.InstanceCount > 0 {
				return FleetStatus{Starting: fl.InstanceCount, LaunchFailed: true, Reason: reason}
			}
			return FleetStatus{Healthy: fl.InstanceCount}
		}
	}
	return FleetStatus{}
}

type memAlarms struct {
	mu     sync.Mutex
	states map[string]kiln.AlarmState
}

func (a *memAlarms) State(name string) (kiln.AlarmState, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.states[name]
	return st, ok
}

func (a *memAlarms) set(name, state, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.states[name] = kiln.AlarmState{StateValue: state, StateReason: reason}
}

type rig struct {
	t      *testing.T
	clk    clock.Fake
	store  *memStore
	fleets *memFleets
	alarms *memAlarms
	ctrl   *Controller
	stop   func()
}

func newRig(t *testing.T, s *memStore, fc clock.Fake) *rig {
	t.Helper()
	r := &rig{t: t, clk: fc, store: s, fleets: &memFleets{s: s, failing: map[string]string{}}, alarms: &memAlarms{states: map[string]kiln.AlarmState{}}}
	r.start()
	return r
}

func (r *rig) start() {
	r.ctrl = NewController(Config{
		Clock: r.clk, Logger: slog.New(slog.DiscardHandler),
		Store: r.store, Fleets: r.fleets, Alarms: r.alarms,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.ctrl.Run(ctx) }()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("Run: %v", err)
		}
	}
	r.t.Cleanup(func() {
		if r.stop != nil {
			r.stop()
			r.stop = nil
		}
	})
}

func (r *rig) halt() {
	r.stop()
	r.stop = nil
}

// waitFor polls the store until cond holds (real time, bounded).
func (r *rig) waitFor(what string, cond func(kiln.Endpoint) bool) kiln.Endpoint {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ep := r.store.get(r.t, "ep")
		if cond(ep) {
			return ep
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; record: %s, deployment %+v", what, ep.EndpointStatus, ep.Deployment)
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *rig) create(cfg kiln.EndpointConfig) {
	r.t.Helper()
	r.store.change(r.t, "ep", func(kiln.Endpoint) (kiln.Endpoint, error) {
		return StartCreate(kiln.CreateEndpointInput{EndpointName: "ep"}, cfg, testModels, testARN, r.clk.Now())
	})
	r.ctrl.Notify("ep")
	r.waitFor("InService", func(ep kiln.Endpoint) bool { return ep.EndpointStatus == kiln.StatusInService })
}

func (r *rig) update(cfg kiln.EndpointConfig, dc *kiln.DeploymentConfig) {
	r.t.Helper()
	r.store.change(r.t, "ep", func(ep kiln.Endpoint) (kiln.Endpoint, error) {
		return StartUpdate(ep, cfg, testModels, kiln.UpdateEndpointInput{DeploymentConfig: dc}, func(string) bool { return true }, r.clk.Now())
	})
	r.ctrl.Notify("ep")
}

func baking(share float64) func(kiln.Endpoint) bool {
	return func(ep kiln.Endpoint) bool {
		return ep.Deployment != nil && ep.Deployment.Phase == kiln.PhaseBaking && greenShareOf(ep, ep.Deployment.Green, "v") == share
	}
}

func TestControllerCanary(t *testing.T) {
	r := newRig(t, newMemStore(), clock.NewFake())
	r.create(c1)
	r.update(c2, canaryConfig(pct(25), 600, 300, "a"))
	r.alarms.set("a", kiln.StateOK, "")

	r.waitFor("the canary's bake", baking(0.25))
	r.clk.Advance(599 * time.Second)
	time.Sleep(20 * time.Millisecond) // give a wrong controller the chance to move on early
	if ep := r.store.get(t, "ep"); !baking(0.25)(ep) {
		t.Fatalf("moved on before the bake's end: %+v", ep.Deployment)
	}
	r.clk.Advance(time.Second)
	r.waitFor("the final bake", baking(1))
	r.clk.Advance(300 * time.Second)
	ep := r.waitFor("the end", func(ep kiln.Endpoint) bool { return ep.Deployment == nil })
	if ep.EndpointStatus != kiln.StatusInService || ep.EndpointConfigName != "c2" || len(ep.Fleets) != 1 {
		t.Fatalf("end: %s on %s with %v", ep.EndpointStatus, ep.EndpointConfigName, fleetIDs(ep))
	}
	r.store.mu.Lock()
	hist := r.store.history["ep"]
	r.store.mu.Unlock()
	if len(hist) < 6 || hist[len(hist)-1].Phase != kiln.PhaseCompleted {
		t.Fatalf("history %+v", hist)
	}
}

// TestControllerRollbackOnNotify: an alarm going to ALARM and a Notify
// roll back without the clock moving at all.
func TestControllerRollbackOnNotify(t *testing.T) {
	r := newRig(t, newMemStore(), clock.NewFake())
	r.create(c1)
	r.update(c2, canaryConfig(pct(25), 600, 0, "a"))
	r.waitFor("the canary's bake", baking(0.25))
	r.alarms.set("a", kiln.StateAlarm, "5xx")
	r.ctrl.Notify("")
	ep := r.waitFor("the rollback", func(ep kiln.Endpoint) bool { return ep.Deployment == nil })
	if ep.EndpointConfigName != "c1" || ep.FailureReason != `Update rolled back because alarm "a" is in ALARM: 5xx` {
		t.Fatalf("end: %s, %q", ep.EndpointConfigName, ep.FailureReason)
	}
}

// TestControllerPeriodicLook: without any Notify, the once-a-second look
// sees the alarm.
func TestControllerPeriodicLook(t *testing.T) {
	r := newRig(t, newMemStore(), clock.NewFake())
	r.create(c1)
	r.update(c2, canaryConfig(pct(25), 600, 0, "a"))
	r.waitFor("the canary's bake", baking(0.25))
	r.alarms.set("a", kiln.StateAlarm, "slow")
	deadline := time.Now().Add(10 * time.Second)
	for r.store.get(t, "ep").Deployment != nil {
		if time.Now().After(deadline) {
			t.Fatal("the alarm was never seen")
		}
		r.clk.Advance(time.Second)
		time.Sleep(time.Millisecond)
	}
	if ep := r.store.get(t, "ep"); ep.EndpointConfigName != "c1" {
		t.Fatalf("end on %s", ep.EndpointConfigName)
	}
}

// TestControllerResumes: a controller stopped half-way through a bake is
// replaced by a new one, which carries on from the record.
func TestControllerResumes(t *testing.T) {
	s := newMemStore()
	fc := clock.NewFake()
	r := newRig(t, s, fc)
	r.create(c1)
	r.update(c2, linearConfig(pct(50), 600, 0))
	r.waitFor("the first step's bake", baking(0.5))
	r.halt()

	r.clk.Advance(600 * time.Second) // nobody looks
	if ep := s.get(t, "ep"); !baking(0.5)(ep) {
		t.Fatal("the record moved without a controller")
	}
	r.start()
	r.waitFor("the second step", baking(1))
	r.clk.Advance(600 * time.Second)
	ep := r.waitFor("the end", func(ep kiln.Endpoint) bool { return ep.Deployment == nil })
	if ep.EndpointConfigName != "c2" {
		t.Fatalf("end on %s", ep.EndpointConfigName)
	}
}

// TestControllerConflicts: a write that loses a race is read again and
// redone, not lost.
func TestControllerConflicts(t *testing.T) {
	s := newMemStore()
	r := newRig(t, s, clock.NewFake())
	r.create(c1)
	r.halt()
	s.mu.Lock()
	s.conflicts = 3
	s.mu.Unlock()
	r.update(c2, nil)
	r.start()
	ep := r.waitFor("the end", func(ep kiln.Endpoint) bool { return ep.Deployment == nil })
	if ep.EndpointConfigName != "c2" {
		t.Fatalf("end on %s", ep.EndpointConfigName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conflicts != 0 {
		t.Fatalf("%d conflicts left: the controller never met them", s.conflicts)
	}
}

// TestControllerLaunchFailure: green fails to launch; the update fails and
// blue keeps serving.
func TestControllerLaunchFailure(t *testing.T) {
	r := newRig(t, newMemStore(), clock.NewFake())
	r.create(c1)
	r.fleets.mu.Lock()
	r.fleets.failing["c2"] = "exit status 2"
	r.fleets.mu.Unlock()
	r.update(c2, canaryConfig(pct(25), 600, 0))
	ep := r.waitFor("the end", func(ep kiln.Endpoint) bool { return ep.Deployment == nil })
	if ep.EndpointConfigName != "c1" || len(ep.Fleets) != 1 {
		t.Fatalf("end on %s with %v", ep.EndpointConfigName, fleetIDs(ep))
	}
	mustContain(t, ep.FailureReason, "exit status 2")
}

// TestControllerIllegalRecord: a record Next cannot make sense of is left
// alone, not rewritten in a loop.
func TestControllerIllegalRecord(t *testing.T) {
	s := newMemStore()
	r := newRig(t, s, clock.NewFake())
	r.create(c1)
	s.change(t, "ep", func(ep kiln.Endpoint) (kiln.Endpoint, error) {
		ep.Deployment = &kiln.Deployment{ID: "x", Kind: "Sideways"}
		ep.EndpointStatus = kiln.StatusUpdating
		return ep, nil
	})
	s.mu.Lock()
	puts := s.puts
	s.mu.Unlock()
	for range 5 {
		r.ctrl.Notify("ep")
		r.clk.Advance(time.Second)
		time.Sleep(2 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.puts != puts {
		t.Fatalf("the controller wrote an illegal record %d times", s.puts-puts)
	}
}

func TestControllerNeedsItsParts(t *testing.T) {
	if err := NewController(Config{}).Run(context.Background()); err == nil {
		t.Fatal("Run without a store returned nil")
	}
}

func TestControllerDeletedEndpoint(t *testing.T) {
	s := newMemStore()
	r := newRig(t, s, clock.NewFake())
	r.create(c1)
	r.update(c2, canaryConfig(pct(25), 600, 0))
	r.waitFor("the bake", baking(0.25))
	s.mu.Lock()
	delete(s.eps, "ep")
	delete(s.revs, "ep")
	s.mu.Unlock()
	r.ctrl.Notify("ep")
	r.clk.Advance(time.Hour)
	time.Sleep(10 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.eps["ep"]; ok {
		t.Fatal("the controller wrote a deleted endpoint back")
	}
}

// BenchmarkRollbackLatency measures the time from an alarm's Notify to the
// rollback's traffic swap being written (reported as ns/swap; the loop's
// ns/op includes setting up each endpoint).
func BenchmarkRollbackLatency(b *testing.B) {
	var total time.Duration
	for range b.N {
		b.StopTimer()
		s := newMemStore()
		fc := clock.NewFake()
		fleets := &memFleets{s: s, failing: map[string]string{}}
		alarms := &memAlarms{states: map[string]kiln.AlarmState{}}
		ctrl := NewController(Config{Clock: fc, Store: s, Fleets: fleets, Alarms: alarms})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { ctrl.Run(ctx); close(done) }()
		ep, err := StartCreate(kiln.CreateEndpointInput{EndpointName: "ep"}, c1, testModels, testARN, fc.Now())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.PutEndpoint(ctx, ep, 0); err != nil {
			b.Fatal(err)
		}
		ctrl.Notify("ep")
		waitBench(b, s, func(ep kiln.Endpoint) bool { return ep.EndpointStatus == kiln.StatusInService })
		cur, rev, _ := s.GetEndpoint(ctx, "ep")
		next, err := StartUpdate(cur, c2, testModels, kiln.UpdateEndpointInput{DeploymentConfig: canaryConfig(pct(25), 600, 0, "a")}, func(string) bool { return true }, fc.Now())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.PutEndpoint(ctx, next, rev); err != nil {
			b.Fatal(err)
		}
		ctrl.Notify("ep")
		waitBench(b, s, baking(0.25))
		b.StartTimer()
		alarms.set("a", kiln.StateAlarm, "bench")
		start := time.Now()
		ctrl.Notify("")
		waitBench(b, s, func(ep kiln.Endpoint) bool {
			return ep.Deployment == nil || ep.Deployment.Phase == kiln.PhaseRollingBack
		})
		b.StopTimer()
		s.mu.Lock()
		total += s.rolledBackAt.Sub(start)
		s.mu.Unlock()
		cancel()
		<-done
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/swap")
}

func waitBench(b *testing.B, s *memStore, cond func(kiln.Endpoint) bool) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ep, _, err := s.GetEndpoint(context.Background(), "ep")
		if err == nil && cond(ep) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal(errors.New("timed out"))
		}
		time.Sleep(20 * time.Microsecond)
	}
}

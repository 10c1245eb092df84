package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDrain(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	slow := newModel(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		io.WriteString(w, "slow")
	})
	fast := newModel(t, "fast", nil)
	f := newFront(t, Config{})
	// Registered last, so it runs first: the model's Close waits for its
	// handlers, and a failed check must not leave the test hanging.
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	f.Update([]EndpointRoute{oneVariant("ep", nil, slow.route("s"))})

	slowDone := make(chan result, 1)
	go func() { slowDone <- f.invoke(t, "ep", nil, nil) }()
	<-arrived
	f.Update([]EndpointRoute{oneVariant("ep", nil, slow.route("s"), fast.route("f"))})

	drained := make(chan error, 1)
	go func() { drained <- f.Drain(t.Context(), "s") }()
	// The drain takes the instance out of the table before it waits; only
	// then must new requests stay off it.
	for f.Table().Routable("ep", "AllTraffic") != 1 {
		time.Sleep(time.Millisecond)
	}

	// While the drain waits, new requests all go to the other instance.
	got := f.load(t, "ep", 200, 8, nil, byBody)
	if got["fast"] != 200 || slow.calls.Load() != 1 {
		t.Errorf("during the drain got %v and slow saw %d calls, want all 200 on fast and slow only the first", got, slow.calls.Load())
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	if n := f.Inflight("s"); n != 1 {
		t.Errorf("Inflight(s) = %d, want 1", n)
	}
	// A drain that gives up returns its context's error.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := f.Drain(ctx, "s"); err != context.DeadlineExceeded {
		t.Errorf("Drain with an expiring context = %v, want DeadlineExceeded", err)
	}

	releaseOnce.Do(func() { close(release) })
	if r := <-slowDone; r.status != http.StatusOK || string(r.body) != "slow" {
		t.Errorf("in-flight request: %d %s, want 200 slow", r.status, r.body)
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Errorf("Drain = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after the in-flight request finished")
	}

	// Listed again, a draining instance stays out of the table.
	f.Update([]EndpointRoute{oneVariant("ep", nil, slow.route("s"), fast.route("f"))})
	if n := f.Table().Routable("ep", "AllTraffic"); n != 1 {
		t.Errorf("routable after relisting the drained instance = %d, want 1", n)
	}
	// Dropped and listed again, it is a new instance.
	f.Update([]EndpointRoute{oneVariant("ep", nil, fast.route("f"))})
	f.Update([]EndpointRoute{oneVariant("ep", nil, slow.route("s"), fast.route("f"))})
	if n := f.Table().Routable("ep", "AllTraffic"); n != 2 {
		t.Errorf("routable after re-adding the instance = %d, want 2", n)
	}

	if err := f.Drain(t.Context(), "unknown"); err != nil {
		t.Errorf("Drain(unknown) = %v, want nil", err)
	}
}

func TestDrainOnlyInstance(t *testing.T) {
	m := newModel(t, "m", nil)
	// No wait for an instance: the invocation gets its 503 at once.
	f := newFront(t, Config{InstanceWait: -1})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
	if err := f.Drain(t.Context(), "m1"); err != nil {
		t.Fatal(err)
	}
	if r := f.invoke(t, "ep", nil, nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("after draining the only instance: %d %s, want 503", r.status, r.body)
	}
	if m.calls.Load() != 0 {
		t.Errorf("drained instance got %d calls", m.calls.Load())
	}
}

func TestDrainAfterRemoval(t *testing.T) {
	// The controller may take an instance out of the table first and drain
	// it afterwards: the drain must still wait for what is in flight.
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	slow := newModel(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	other := newModel(t, "other", nil)
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, slow.route("s"))})
	done := make(chan result, 1)
	go func() { done <- f.invoke(t, "ep", nil, nil) }()
	<-arrived
	f.Update([]EndpointRoute{oneVariant("ep", nil, other.route("o"))})
	if n := f.Inflight("s"); n != 1 {
		t.Errorf("Inflight of the removed instance = %d, want 1", n)
	}
	drained := make(chan error, 1)
	go func() { drained <- f.Drain(t.Context(), "s") }()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if r := <-done; r.status != http.StatusOK {
		t.Errorf("in-flight request: %d", r.status)
	}
	if err := <-drained; err != nil {
		t.Errorf("Drain = %v", err)
	}
}

// TestSwapUnderLoad runs blue/green deployments back to back under
// continuous load: traffic shifts in steps, the old fleet is drained and
// retired, and a retired instance fails every request it has. No request
// may fail and none may reach a retired instance.
func TestSwapUnderLoad(t *testing.T) {
	type inst struct {
		*model
		retired atomic.Bool
	}
	var late atomic.Int64
	newInst := func(name string) *inst {
		in := &inst{}
		in.model = newModel(t, name, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			// A retired instance is gone: a request that arrives there, or
			// is still being served there when it retires, fails.
			if in.retired.Load() {
				late.Add(1)
				http.Error(w, "retired", http.StatusGone)
				return
			}
			time.Sleep(500 * time.Microsecond)
			if in.retired.Load() {
				late.Add(1)
				http.Error(w, "retired while serving", http.StatusGone)
				return
			}
			io.WriteString(w, name)
		})
		return in
	}
	pool := []*inst{newInst("m0"), newInst("m1"), newInst("m2"), newInst("m3")}

	f := newFront(t, Config{})
	fleet := func(id string, share float64, ins []*inst, gen int) FleetRoute {
		fr := FleetRoute{ID: id, Share: share}
		for i, in := range ins {
			fr.Instances = append(fr.Instances, in.route(fmt.Sprintf("%s-%d-%d", id, gen, i)))
		}
		return fr
	}
	ep := func(fleets ...FleetRoute) []EndpointRoute {
		return []EndpointRoute{{Name: "ep", Variants: []VariantRoute{{Name: "v", Weight: 1, Fleets: fleets}}}}
	}

	blue, green := pool[:2], pool[2:]
	blueFleet := fleet("blue", 1, blue, 0)
	f.Update(ep(blueFleet))

	stop := make(chan struct{})
	var failures, total atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := f.invoke(t, "ep", []byte("x"), nil)
				total.Add(1)
				if r.status != http.StatusOK {
					failures.Add(1)
					t.Errorf("request failed: %d %s", r.status, r.body)
				}
			}
		})
	}

	for gen := 1; gen <= 20; gen++ {
		for _, in := range green {
			in.retired.Store(false)
		}
		greenFleet := fleet("green", 0, green, gen)
		for _, share := range []float64{0, 0.1, 0.5, 1} {
			blueFleet.Share, greenFleet.Share = 1-share, share
			f.Update(ep(blueFleet, greenFleet))
			if share < 1 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		// Drain right after the last shift, while requests routed by the
		// previous table are still in flight on blue.
		for _, in := range blueFleet.Instances {
			if err := f.Drain(t.Context(), in.ID); err != nil {
				t.Fatal(err)
			}
		}
		for _, in := range blue {
			in.retired.Store(true)
		}
		greenFleet.ID = "blue"
		f.Update(ep(greenFleet))
		blueFleet = greenFleet
		blue, green = green, blue
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()

	if n := late.Load(); n != 0 {
		t.Errorf("%d requests reached a retired instance", n)
	}
	if failures.Load() != 0 || total.Load() < 100 {
		t.Errorf("%d of %d requests failed", failures.Load(), total.Load())
	}
	t.Logf("%d requests across 20 deployments", total.Load())
}

// TestStaleTableBacksOut covers the request that loaded the table just
// before a drain: the instance it chose refuses it, and it picks again from
// the current table.
func TestStaleTableBacksOut(t *testing.T) {
	g := New(Config{Rand: seeded(1)})
	defer g.Close()
	g.Update([]EndpointRoute{oneVariant("ep", nil, InstanceRoute{ID: "old", Addr: "127.0.0.1:1"}, InstanceRoute{ID: "new", Addr: "127.0.0.1:2"})})
	stale := g.Table().endpoints["ep"].all[0].fleets[0].instances

	if err := g.Drain(t.Context(), "old"); err != nil {
		t.Fatal(err)
	}
	for _, in := range stale {
		if got := in.acquire(); got != (in.id == "new") {
			t.Errorf("acquire(%s) from a stale table = %v", in.id, got)
		} else if got {
			in.release()
		}
	}
	for range 100 {
		_, _, in := g.acquire("ep", "", nil)
		if in == nil || in.id != "new" {
			t.Fatalf("acquire picked %v, want new", in)
		}
		in.release()
	}
	if n := g.Inflight("old") + g.Inflight("new"); n != 0 {
		t.Errorf("in flight after release: %d", n)
	}

	// Removal without Drain closes the instance the same way.
	g.Update([]EndpointRoute{oneVariant("ep", nil, InstanceRoute{ID: "newer", Addr: "127.0.0.1:3"})})
	for _, in := range stale {
		if in.acquire() {
			t.Errorf("acquire(%s) succeeded after its removal", in.id)
		}
	}
}

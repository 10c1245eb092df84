package gateway

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWeightsSplitTraffic(t *testing.T) {
	a, b := newModel(t, "a", nil), newModel(t, "b", nil)
	f := newFront(t, Config{Rand: seeded(42)})
	f.Update([]EndpointRoute{{Name: "ep", Variants: []VariantRoute{
		{Name: "Big", Weight: 0.9, Fleets: []FleetRoute{{ID: "fa", Share: 1, Instances: []InstanceRoute{a.route("a1")}}}},
		{Name: "Small", Weight: 0.1, Fleets: []FleetRoute{{ID: "fb", Share: 1, Instances: []InstanceRoute{b.route("b1")}}}},
		// Weight 0: reached only by name.
		{Name: "Shadow", Weight: 0, Fleets: []FleetRoute{{ID: "fc", Share: 1, Instances: []InstanceRoute{b.route("c1")}}}},
		// No instance: never chosen by weight.
		{Name: "Empty", Weight: 5},
	}}})

	const n = 10000
	got := f.load(t, "ep", n, 8, nil, byVariant)
	if len(got) != 2 || !within(got["Big"], 9000, 300) || !within(got["Small"], 1000, 300) {
		t.Fatalf("got %v over %d requests, want Big ≈ 9000 and Small ≈ 1000 (±300)", got, n)
	}
	if a.calls.Load() != int64(got["Big"]) || b.calls.Load() != int64(got["Small"]) {
		t.Errorf("models saw %d and %d calls, want %d and %d", a.calls.Load(), b.calls.Load(), got["Big"], got["Small"])
	}
}

func TestTargetVariant(t *testing.T) {
	a, b := newModel(t, "a", nil), newModel(t, "b", nil)
	// The invocation of the variant with no instance waits briefly.
	f := newFront(t, Config{Account: "123456789012", InstanceWait: 10 * time.Millisecond})
	f.Update([]EndpointRoute{{Name: "ep", Variants: []VariantRoute{
		{Name: "A", Weight: 1, Fleets: []FleetRoute{{ID: "fa", Share: 1, Instances: []InstanceRoute{a.route("a1")}}}},
		{Name: "B", Weight: 0, Fleets: []FleetRoute{{ID: "fb", Share: 1, Instances: []InstanceRoute{b.route("b1")}}}},
		{Name: "Empty", Weight: 1},
	}}})

	got := f.load(t, "ep", 200, 4, map[string]string{"X-Amzn-SageMaker-Target-Variant": "B"}, byBody)
	if got["b"] != 200 {
		t.Errorf("Target-Variant B: got %v, want all 200 from b", got)
	}

	r := f.invoke(t, "ep", nil, map[string]string{"X-Amzn-SageMaker-Target-Variant": "Nope"})
	if r.status != http.StatusBadRequest {
		t.Fatalf("unknown target variant: status %d, want 400", r.status)
	}
	e := decodeError(t, r)
	if e.Type != "ValidationError" || !strings.Contains(e.Message, "Nope") || !strings.Contains(e.Message, "123456789012") {
		t.Errorf("unknown target variant: got %+v, want a ValidationError naming Nope and the account", e)
	}

	r = f.invoke(t, "ep", nil, map[string]string{"X-Amzn-SageMaker-Target-Variant": "Empty"})
	if r.status != http.StatusServiceUnavailable || decodeError(t, r).Type != "ServiceUnavailable" {
		t.Errorf("target variant without instances: got %d %s, want 503 ServiceUnavailable", r.status, r.body)
	}
}

func TestFleetShares(t *testing.T) {
	blue, green := newModel(t, "blue", nil), newModel(t, "green", nil)
	f := newFront(t, Config{Rand: seeded(7)})
	routes := func(blueShare, greenShare float64, greenInstances []InstanceRoute) []EndpointRoute {
		return []EndpointRoute{{Name: "ep", Variants: []VariantRoute{{Name: "AllTraffic", Weight: 1, Fleets: []FleetRoute{
			{ID: "blue", Config: "cfg-1", Share: blueShare, Instances: []InstanceRoute{blue.route("b1")}},
			{ID: "green", Config: "cfg-2", Share: greenShare, Instances: greenInstances},
		}}}}}
	}

	t.Run("25/75", func(t *testing.T) {
		f.Update(routes(0.25, 0.75, []InstanceRoute{green.route("g1")}))
		got := f.load(t, "ep", 10000, 8, nil, byBody)
		if len(got) != 2 || !within(got["blue"], 2500, 300) || !within(got["green"], 7500, 300) {
			t.Errorf("got %v, want blue ≈ 2500 and green ≈ 7500 (±300)", got)
		}
	})
	t.Run("green without instances", func(t *testing.T) {
		f.Update(routes(0.25, 0.75, nil))
		got := f.load(t, "ep", 500, 4, nil, byBody)
		if got["blue"] != 500 {
			t.Errorf("got %v, want all 500 on blue", got)
		}
	})
	t.Run("routable fleets all at share 0", func(t *testing.T) {
		f.Update(routes(0, 1, nil))
		got := f.load(t, "ep", 200, 4, nil, byBody)
		if got["blue"] != 200 {
			t.Errorf("got %v, want all 200 on blue", got)
		}
	})
	t.Run("green drained", func(t *testing.T) {
		f.Update(routes(0, 1, []InstanceRoute{green.route("g1")}))
		if err := f.Drain(t.Context(), "g1"); err != nil {
			t.Fatal(err)
		}
		got := f.load(t, "ep", 200, 4, nil, byBody)
		if got["blue"] != 200 {
			t.Errorf("got %v, want all 200 on blue", got)
		}
	})
}

func TestLeastOutstanding(t *testing.T) {
	slow := newModel(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "slow")
	})
	fast := newModel(t, "fast", nil)
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, slow.route("slow"), fast.route("fast"))})

	const n = 500
	got := f.load(t, "ep", n, 4, nil, byBody)
	if got["slow"]+got["fast"] != n {
		t.Fatalf("got %v, want %d answers", got, n)
	}
	// Random choice would give slow half. Least outstanding gives it only
	// what arrives while it is no busier than the fast one.
	if got["slow"] > n/5 {
		t.Errorf("slow instance got %d of %d requests (fast %d), want at most a fifth", got["slow"], n, got["fast"])
	}
}

func TestLeastOutstandingPowerOfTwo(t *testing.T) {
	// A fleet larger than scanMax uses two random choices: an instance with
	// many requests in flight is never picked over an idle one.
	var ins []*instance
	for i := range 3 * scanMax {
		in := newInstance(InstanceRoute{ID: string(rune('a' + i)), Addr: "x:1"})
		ins = append(ins, in)
	}
	busy := ins[5]
	busy.inflight.Store(100)
	rnd := seeded(3)
	for range 10000 {
		if got := leastOutstanding(ins, nil, rnd); got == busy {
			t.Fatal("picked the busy instance over an idle one")
		}
		if got := leastOutstanding(ins, ins[0], rnd); got == ins[0] {
			t.Fatal("picked the excluded instance")
		}
	}
}

func TestOutstandingSurvivesSwap(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	slow := newModel(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "slow")
	})
	fast := newModel(t, "fast", nil)
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, slow.route("s"))})

	var wg sync.WaitGroup
	wg.Go(func() {
		if r := f.invoke(t, "ep", nil, nil); r.status != http.StatusOK {
			t.Errorf("slow request: status %d %s", r.status, r.body)
		}
	})
	<-arrived
	// The new table lists the busy instance again: its count carries over,
	// so every new request goes to the idle one.
	f.Update([]EndpointRoute{oneVariant("ep", nil, slow.route("s"), fast.route("f"))})
	if got := f.Inflight("s"); got != 1 {
		t.Errorf("Inflight(s) after swap = %d, want 1", got)
	}
	got := f.load(t, "ep", 50, 1, nil, byBody)
	close(release)
	wg.Wait()
	if got["fast"] != 50 {
		t.Errorf("got %v, want all 50 on the idle instance", got)
	}
}

func TestRecorderSamples(t *testing.T) {
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		if r.Header.Get("Accept") == "fail" {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})
	other := newModel(t, "other", nil)
	rec := &recorder{}
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{{Name: "ep", Variants: []VariantRoute{{Name: "v", Weight: 1, Fleets: []FleetRoute{
		{ID: "f", Share: 1, Recorder: rec, Instances: []InstanceRoute{m.route("m1")}},
		{ID: "g", Share: 0, Recorder: nil, Instances: []InstanceRoute{other.route("o1")}},
	}}}}})

	f.invoke(t, "ep", nil, nil)
	f.invoke(t, "ep", nil, map[string]string{"Accept": "fail"})
	got := rec.all()
	if len(got) != 2 {
		t.Fatalf("got %d samples, want 2: %+v", len(got), got)
	}
	for i, want := range []struct {
		status   int
		modelErr bool
	}{{200, false}, {424, true}} {
		s := got[i]
		if s.Status != want.status || s.ModelError != want.modelErr || s.Instances != 2 {
			t.Errorf("sample %d = %+v, want Status %d, ModelError %v, Instances 2", i, s, want.status, want.modelErr)
		}
		if s.ModelLatency < 10*time.Millisecond || s.OverheadLatency < 0 || s.OverheadLatency > time.Second {
			t.Errorf("sample %d latencies: model %v, overhead %v; want model ≥ 10ms", i, s.ModelLatency, s.OverheadLatency)
		}
	}
}

func TestUpdateSkipsInvalidRoutes(t *testing.T) {
	m := newModel(t, "m", nil)
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{
		oneVariant("good", nil, m.route("m1")),
		{Name: "bad", Variants: []VariantRoute{{Name: "v", Weight: -1}}},
		{Name: "dup", Variants: []VariantRoute{{Name: "v", Weight: 1}, {Name: "v", Weight: 1}}},
		oneVariant("noaddr", nil, InstanceRoute{ID: "x"}),
	})
	if r := f.invoke(t, "good", nil, nil); r.status != http.StatusOK {
		t.Errorf("good: status %d", r.status)
	}
	for _, ep := range []string{"bad", "dup", "noaddr"} {
		if r := f.invoke(t, ep, nil, nil); r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400 (endpoint skipped)", ep, r.status)
		}
	}
	routes := f.Table().Routes()
	if len(routes) != 1 || routes[0].Name != "good" {
		t.Errorf("Table().Routes() = %+v, want only good", routes)
	}
	if got := f.Table().Routable("good", "AllTraffic"); got != 1 {
		t.Errorf("Routable(good, AllTraffic) = %d, want 1", got)
	}
}

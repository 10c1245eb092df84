package metrics

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-serve/kiln/internal/clock"
)

// Store holds the series of every fleet Kiln serves and answers queries over
// them. It is safe for concurrent use and starts no goroutines: seconds and
// minutes are closed by whichever Record or query first sees the clock pass
// them.
type Store struct {
	clk    clock.Clock
	shards int // per series

	mu     sync.RWMutex
	series map[seriesKey]*Series

	lastGC atomic.Int64
}

type seriesKey struct{ endpoint, variant, config string }

// New returns an empty Store. If clk is nil the wall clock is used. If reg
// is nil nothing is exposed to Prometheus; otherwise the series are
// exposed on it as kiln_invocations_total, kiln_invocation_errors_total,
// kiln_model_latency_seconds and kiln_overhead_latency_seconds, labelled by
// endpoint, variant and config. Several Stores may share a registry. New
// panics if reg holds a different collector under one of those names.
func New(clk clock.Clock, reg prometheus.Registerer) *Store {
	if clk == nil {
		clk = clock.Real()
	}
	// One shard per processor (a power of two, at most 8) spreads
	// concurrent Records; more would cost memory for little gain.
	shards := 1
	for shards < runtime.GOMAXPROCS(0) && shards < 8 {
		shards *= 2
	}
	st := &Store{
		clk:    clk,
		shards: shards,
		series: make(map[seriesKey]*Series),
	}
	st.lastGC.Store(clk.Now().Unix())
	if reg != nil {
		register(reg, st)
	}
	return st
}

// Series returns the series of one fleet, creating it on first use. The
// same key always yields the same *Series while it holds data, so callers
// resolve it once (per routing table) and record into it for every request.
// Asking again for a forgotten series exposes it to Prometheus again.
func (st *Store) Series(endpoint, variant, config string) *Series {
	k := seriesKey{endpoint, variant, config}
	st.mu.RLock()
	s := st.series[k]
	ok := s != nil && !s.forgotten
	st.mu.RUnlock()
	if ok {
		return s
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s = st.series[k]
	switch {
	case s == nil:
		s = newSeries(st.clk, endpoint, variant, config, st.shards)
		st.series[k] = s
	case s.forgotten:
		s.forgotten = false
	}
	return s
}

// Forget stops exposing a retired fleet's series to Prometheus. Its history
// stays queryable until it ages out, after which the series itself is
// dropped. Records into a forgotten series still count towards its history.
func (st *Store) Forget(endpoint, variant, config string) {
	st.mu.Lock()
	if s := st.series[seriesKey{endpoint, variant, config}]; s != nil {
		s.forgotten = true
	}
	st.mu.Unlock()
}

// exported returns the series that are not forgotten.
func (st *Store) exported() []*Series {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]*Series, 0, len(st.series))
	for _, s := range st.series {
		if !s.forgotten {
			out = append(out, s)
		}
	}
	return out
}

// match returns the series selected by a CloudWatch dimension set:
// {EndpointName}, {EndpointName, VariantName} or {EndpointName, VariantName,
// EndpointConfigName}. Any other set matches nothing, as in CloudWatch,
// where a metric exists only under the dimension sets it was published with.
func (st *Store) match(dims map[string]string) []*Series {
	e, v, c := dims[DimEndpoint], dims[DimVariant], dims[DimConfig]
	want := 1
	switch {
	case e == "":
		return nil
	case c != "" && v == "":
		return nil
	case c != "":
		want = 3
	case v != "":
		want = 2
	}
	if len(dims) != want {
		return nil
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	var out []*Series
	for k, s := range st.series {
		if k.endpoint == e && (v == "" || k.variant == v) && (c == "" || k.config == c) {
			out = append(out, s)
		}
	}
	return out
}

// all returns every series.
func (st *Store) all() []*Series {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]*Series, 0, len(st.series))
	for _, s := range st.series {
		out = append(out, s)
	}
	return out
}

// gc drops forgotten series whose data has all aged out. Queries call it;
// it does its work at most once a minute.
func (st *Store) gc(now int64) {
	last := st.lastGC.Load()
	if now-last < 60 || !st.lastGC.CompareAndSwap(last, now) {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, s := range st.series {
		if !s.forgotten {
			continue
		}
		s.advance(now)
		if s.empty() {
			delete(st.series, k)
		}
	}
}

package metrics

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus exposition.
//
// The series are exposed by one collector that reads each series' running
// totals when scraped, rather than by client_golang's counter and histogram
// vectors updated on every request: those cost more than the rest of
// Record together (several atomic read-modify-writes per histogram, shared
// by every request of a fleet). The totals grow once a second, when a
// second closes, from the same data the queries read; a scrape first
// closes the seconds that have ended, so it lags by less than a second.
//
// Histogram buckets are counted from the latency sketch: an observation is
// under le when its sketch value (within 1% of it) is, so only observations
// within 1% of a bucket bound may land in the neighbouring bucket. Counts
// and sums are exact.

var (
	modelLatencyBuckets    = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	overheadLatencyBuckets = [...]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

	// promBucketOf maps a sketch bucket to the Prometheus bucket (index
	// of its le, or len for +Inf) of model and overhead latency.
	promBucketOf = [2]*[sketchBuckets]uint8{
		newPromBucketMap(modelLatencyBuckets[:]),
		newPromBucketMap(overheadLatencyBuckets[:]),
	}
)

func newPromBucketMap(le []float64) *[sketchBuckets]uint8 {
	m := new([sketchBuckets]uint8)
	for i := range m {
		v := bucketValue(i) / 1e6 // seconds
		j := 0
		for j < len(le) && v > le[j] {
			j++
		}
		m[i] = uint8(j)
	}
	return m
}

// promTotals are a series' totals since it was created.
type promTotals struct {
	n, e4, e5, em uint64
	sum           [2]float64    // seconds
	buckets       [2][16]uint64 // per Prometheus bucket, not cumulative
}

// add counts a closed second, whose sketches are still in live.
func (t *promTotals) add(sl *slot, live *[2]dense) {
	t.n += uint64(sl.n)
	t.e4 += uint64(sl.e4)
	t.e5 += uint64(sl.e5)
	t.em += uint64(sl.em)
	for j := range live {
		t.sum[j] += sl.lat[j].sum / 1e6
		d, m := &live[j], promBucketOf[j]
		for i := d.lo; i <= d.hi; i++ {
			t.buckets[j][m[i]] += uint64(d.counts[i])
		}
	}
}

// promCollector exposes the series of one or more Stores (several Stores
// registered on one registry share it).
type promCollector struct {
	invocations, errors, modelLatency, overheadLatency *prometheus.Desc

	mu     sync.Mutex
	stores []*Store
}

func newPromCollector() *promCollector {
	labels := []string{"endpoint", "variant", "config"}
	return &promCollector{
		invocations: prometheus.NewDesc("kiln_invocations_total",
			"Invocations received by the gateway, per endpoint, variant and endpoint config.", labels, nil),
		errors: prometheus.NewDesc("kiln_invocation_errors_total",
			"Failed invocations: class 4xx and 5xx by the status the client got, model for model errors, connection failures and timeouts.",
			append([]string{"class"}, labels...), nil),
		modelLatency: prometheus.NewDesc("kiln_model_latency_seconds",
			"Time the model took to answer an invocation.", labels, nil),
		overheadLatency: prometheus.NewDesc("kiln_overhead_latency_seconds",
			"Time the gateway added to an invocation.", labels, nil),
	}
}

// register registers a collector for st on reg, or joins the collector
// another Store registered there.
func register(reg prometheus.Registerer, st *Store) {
	c := newPromCollector()
	c.stores = []*Store{st}
	err := reg.Register(c)
	if err == nil {
		return
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*promCollector); ok {
			existing.mu.Lock()
			existing.stores = append(existing.stores, st)
			existing.mu.Unlock()
			return
		}
	}
	// Only a different collector under one of our names gets here: a wiring
	// mistake, not something a request can cause.
	panic(fmt.Sprintf("metrics: registering the Prometheus collector: %v", err))
}

func (c *promCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.invocations
	ch <- c.errors
	ch <- c.modelLatency
	ch <- c.overheadLatency
}

func (c *promCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	stores := append([]*Store(nil), c.stores...)
	c.mu.Unlock()
	for _, st := range stores {
		now := st.clk.Now().Unix()
		for _, s := range st.exported() {
			s.advance(now)
			s.mu.RLock()
			t := s.totals
			s.mu.RUnlock()
			lv := []string{s.endpoint, s.variant, s.config}
			ch <- prometheus.MustNewConstMetric(c.invocations, prometheus.CounterValue, float64(t.n), lv...)
			for _, e := range []struct {
				class string
				n     uint64
			}{{"4xx", t.e4}, {"5xx", t.e5}, {"model", t.em}} {
				ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(e.n), e.class, s.endpoint, s.variant, s.config)
			}
			ch <- constHistogram(c.modelLatency, t.n, t.sum[0], modelLatencyBuckets[:], &t.buckets[0], lv)
			ch <- constHistogram(c.overheadLatency, t.n, t.sum[1], overheadLatencyBuckets[:], &t.buckets[1], lv)
		}
	}
}

func constHistogram(d *prometheus.Desc, n uint64, sum float64, le []float64, counts *[16]uint64, lv []string) prometheus.Metric {
	cum := make(map[float64]uint64, len(le))
	var c uint64
	for i, b := range le {
		c += counts[i]
		cum[b] = c
	}
	return prometheus.MustNewConstHistogram(d, n, sum, cum, lv...)
}

package metrics

import (
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
)

// MaxCustomSeries bounds the custom metrics a Kiln keeps (one per
// namespace, metric name and set of dimensions), so that a publisher that
// mints a dimension value per request cannot exhaust memory.
const MaxCustomSeries = 10000

// Custom keeps the metrics clients publish with PutMetricData, in any
// namespace but AWS/SageMaker's: per second for SecondRetention, then per
// minute for MinuteRetention, in memory, as the store of Kiln's own
// metrics does. It keeps SampleCount, Sum, Minimum and Maximum, so it
// answers those and Average; percentiles are for Kiln's own latencies.
// Safe for concurrent use.
type Custom struct {
	clk    clock.Clock
	mu     sync.Mutex
	series map[string]*customSeries
}

// CustomDatum is one data point to publish: a value is {1, v, v, v};
// several values, or a statistic set, aggregate.
type CustomDatum struct {
	MetricName string
	Dimensions []kiln.Dimension
	// Timestamp is when the data point was measured; zero means now.
	Timestamp                  time.Time
	SampleCount, Sum, Min, Max float64
}

type customSeries struct {
	id      MetricID
	seconds map[int64]stats
	minutes map[int64]stats
}

// stats aggregates data points.
type stats struct{ n, sum, min, max float64 }

func (s *stats) add(o stats) {
	if s.n == 0 {
		*s = o
		return
	}
	s.n += o.n
	s.sum += o.sum
	s.min = math.Min(s.min, o.min)
	s.max = math.Max(s.max, o.max)
}

// NewCustom returns an empty store of custom metrics.
func NewCustom(clk clock.Clock) *Custom {
	return &Custom{clk: clk, series: map[string]*customSeries{}}
}

// Put records data points of namespace. Points older than MinuteRetention
// are dropped, as Kiln would no longer answer for them. Nothing is
// recorded when a point would make the store exceed MaxCustomSeries.
func (c *Custom) Put(namespace string, data []CustomDatum) error {
	now := c.clk.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gc(now.Unix())
	dims := make([][]kiln.Dimension, len(data))
	keys := make([]string, len(data))
	fresh := map[string]bool{}
	for i, d := range data {
		dims[i] = sortedDims(d.Dimensions)
		keys[i] = customKey(namespace, d.MetricName, dims[i])
		if c.series[keys[i]] == nil {
			fresh[keys[i]] = true
		}
	}
	if len(c.series)+len(fresh) > MaxCustomSeries {
		return kiln.Errorf(kiln.ELIMIT, "Kiln keeps at most %d custom metrics (namespace, metric name and dimensions); these data would make %d.", MaxCustomSeries, len(c.series)+len(fresh))
	}
	for i, d := range data {
		t := d.Timestamp
		if t.IsZero() {
			t = now
		}
		if now.Sub(t) > MinuteRetention {
			continue
		}
		s := c.series[keys[i]]
		if s == nil {
			s = &customSeries{id: MetricID{Namespace: namespace, MetricName: d.MetricName, Dimensions: dims[i]},
				seconds: map[int64]stats{}, minutes: map[int64]stats{}}
			c.series[keys[i]] = s
		}
		p := stats{d.SampleCount, d.Sum, d.Min, d.Max}
		sec := t.Unix()
		minute := floorDiv(sec, 60) * 60
		v := s.seconds[sec]
		v.add(p)
		s.seconds[sec] = v
		m := s.minutes[minute]
		m.add(p)
		s.minutes[minute] = m
	}
	return nil
}

// gc forgets what is past retention, and series left without data.
func (c *Custom) gc(now int64) {
	secs, mins := now-int64(SecondRetention/time.Second), now-int64(MinuteRetention/time.Second)
	for k, s := range c.series {
		maps.DeleteFunc(s.seconds, func(t int64, _ stats) bool { return t < secs })
		maps.DeleteFunc(s.minutes, func(t int64, _ stats) bool { return t < mins })
		if len(s.minutes) == 0 && len(s.seconds) == 0 {
			delete(c.series, k)
		}
	}
}

// Query answers GetMetricStatistics for a custom metric: the series whose
// namespace, name and dimensions are exactly the query's, as CloudWatch
// treats every combination of dimensions as a metric of its own. Within
// SecondRetention the data has one-second resolution; before that only
// periods that are whole minutes have data.
func (c *Custom) Query(q Query) ([]Datapoint, error) {
	stat, err := ParseStatistic(q.Statistic)
	if err != nil {
		return nil, err
	}
	if stat.Kind == Percentile {
		return nil, kiln.Errorf(kiln.EINVALID, "Statistic %q: Kiln keeps SampleCount, Sum, Minimum and Maximum of the metrics published to it, not percentiles.", q.Statistic)
	}
	if q.Period < time.Second || q.Period%time.Second != 0 {
		return nil, kiln.Errorf(kiln.EINVALID, "Period %v is not a whole number of seconds of at least 1.", q.Period)
	}
	if !q.End.After(q.Start) {
		return nil, kiln.Errorf(kiln.EINVALID, "End (%s) must be after Start (%s).", q.End.Format(time.RFC3339), q.Start.Format(time.RFC3339))
	}
	dims := make([]kiln.Dimension, 0, len(q.Dimensions))
	for n, v := range q.Dimensions {
		dims = append(dims, kiln.Dimension{Name: n, Value: v})
	}
	now := c.clk.Now().Unix()
	period := int64(q.Period / time.Second)
	from, to := secondsRange(q.Start, q.End)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gc(now)
	s := c.series[customKey(q.Namespace, q.MetricName, sortedDims(dims))]
	if s == nil {
		return nil, nil
	}
	byPeriod := map[int64]stats{}
	add := func(t int64, v stats) {
		// The current second counts once it has ended.
		if t >= now {
			return
		}
		p := floorDiv(t, period) * period
		a := byPeriod[p]
		a.add(v)
		byPeriod[p] = a
	}
	secFrom := max(from, now-int64(SecondRetention/time.Second))
	for t, v := range s.seconds {
		if t >= secFrom && t < to {
			add(t, v)
		}
	}
	if period%60 == 0 && from < secFrom {
		// Older data from the minute roll-ups: a minute counts if it
		// overlaps the range and ends before the seconds take over.
		for t, v := range s.minutes {
			if t+60 > from && t < to && t+60 <= floorDiv(secFrom, 60)*60 {
				add(t, v)
			}
		}
	}
	out := make([]Datapoint, 0, len(byPeriod))
	for _, p := range slices.Sorted(maps.Keys(byPeriod)) {
		a := byPeriod[p]
		var v float64
		switch stat.Kind {
		case SampleCount:
			v = a.n
		case Sum:
			v = a.sum
		case Average:
			v = a.sum / a.n
		case Minimum:
			v = a.min
		case Maximum:
			v = a.max
		}
		out = append(out, Datapoint{Timestamp: time.Unix(p, 0).UTC(), Value: v, SampleCount: a.n})
	}
	return out, nil
}

// ListMetrics returns the custom metrics with data within the retention
// that match: namespace and metricName if not empty, and every dimension
// of dims (one with an empty value matches any value).
func (c *Custom) ListMetrics(namespace, metricName string, dims map[string]string) []MetricID {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gc(c.clk.Now().Unix())
	var out []MetricID
	for _, s := range c.series {
		if (namespace == "" || s.id.Namespace == namespace) && (metricName == "" || s.id.MetricName == metricName) && dimsMatch(s.id.Dimensions, dims) {
			out = append(out, MetricID{Namespace: s.id.Namespace, MetricName: s.id.MetricName, Dimensions: slices.Clone(s.id.Dimensions)})
		}
	}
	slices.SortFunc(out, func(a, b MetricID) int {
		return strings.Compare(customKey(a.Namespace, a.MetricName, a.Dimensions), customKey(b.Namespace, b.MetricName, b.Dimensions))
	})
	return out
}

// sortedDims returns a copy of dims in name order, as a series keeps them.
func sortedDims(dims []kiln.Dimension) []kiln.Dimension {
	sorted := slices.Clone(dims)
	slices.SortFunc(sorted, func(a, b kiln.Dimension) int { return strings.Compare(a.Name, b.Name) })
	return sorted
}

// customKey identifies a series: namespace, name, and the dimensions, which
// must be in name order.
func customKey(namespace, name string, sorted []kiln.Dimension) string {
	var b strings.Builder
	b.WriteString(namespace)
	b.WriteByte(0)
	b.WriteString(name)
	for _, d := range sorted {
		b.WriteByte(0)
		b.WriteString(d.Name)
		b.WriteByte(1)
		b.WriteString(d.Value)
	}
	return b.String()
}

package metrics

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
)

// Query asks for one statistic of one metric, period by period, as
// CloudWatch's GetMetricStatistics does.
type Query struct {
	// Namespace is AWS/SageMaker; empty means the same. Any other namespace
	// has no data.
	Namespace  string
	MetricName string
	// Dimensions selects the series: {EndpointName} aggregates every
	// variant of the endpoint, {EndpointName, VariantName} every fleet of
	// the variant, {EndpointName, VariantName, EndpointConfigName} one
	// fleet. Other sets have no data.
	Dimensions map[string]string
	// Statistic is as ParseStatistic accepts: SampleCount, Sum, Average,
	// Minimum, Maximum, or a percentile such as p99 or p99.9.
	Statistic string
	// Period is a whole number of seconds, at least one. Periods start at
	// multiples of Period since the Unix epoch.
	Period time.Duration
	// Start and End bound the seconds whose data counts: Start ≤ t < End.
	Start, End time.Time
}

// Datapoint is the statistic over one period.
type Datapoint struct {
	Timestamp   time.Time // start of the period, UTC
	Value       float64
	SampleCount float64 // requests in the period
}

// Query returns one datapoint per period that has data, oldest first.
// Periods without requests are absent. The current second counts once it
// has ended. Within SecondRetention of now the data has one-second
// resolution; before that, only periods that are whole minutes have data,
// taken from the minute roll-ups (a minute counts if it overlaps the range),
// as CloudWatch does for data older than three hours.
//
// An unknown metric name, a bad statistic, a percentile of
// InvocationsPerInstance, a bad period or an empty range is an error
// (code kiln.EINVALID) that names the culprit.
func (st *Store) Query(q Query) ([]Datapoint, error) {
	m, ok := lookupMetric(q.MetricName)
	if !ok {
		return nil, kiln.Errorf(kiln.EINVALID, "MetricName %q is not one of %s.", q.MetricName, strings.Join(metricNames[:], ", "))
	}
	stat, err := ParseStatistic(q.Statistic)
	if err != nil {
		return nil, err
	}
	lat, isLat := m.latency()
	if stat.Kind == Percentile && m == mPerInstance {
		return nil, kiln.Errorf(kiln.EINVALID, "Statistic %q: percentiles are not available for %s.", q.Statistic, q.MetricName)
	}
	if q.Period < time.Second || q.Period%time.Second != 0 {
		return nil, kiln.Errorf(kiln.EINVALID, "Period %v is not a whole number of seconds of at least 1.", q.Period)
	}
	if !q.End.After(q.Start) {
		return nil, kiln.Errorf(kiln.EINVALID, "End (%s) must be after Start (%s).", q.End.Format(time.RFC3339), q.Start.Format(time.RFC3339))
	}
	if q.Namespace != "" && q.Namespace != Namespace {
		return nil, nil
	}
	series := st.match(q.Dimensions)
	if len(series) == 0 {
		return nil, nil
	}
	now := st.clk.Now().Unix()
	st.gc(now)
	period := int64(q.Period / time.Second)
	from, to := secondsRange(q.Start, q.End)

	var slots []slot
	for _, s := range series {
		slots = s.snapshot(slots, now, from, to, period%60 == 0)
	}
	if len(series) > 1 {
		slices.SortStableFunc(slots, func(a, b slot) int { return cmp.Compare(a.t, b.t) })
	}
	var sk *wide
	if stat.Kind == Percentile && isLat {
		sk = newWide()
	}
	var out []Datapoint
	var a agg
	var cur int64
	emit := func() {
		out = append(out, Datapoint{
			Timestamp:   time.Unix(cur, 0).UTC(),
			Value:       a.value(m, stat, sk),
			SampleCount: float64(a.n),
		})
		a = agg{}
		if sk != nil {
			sk.reset()
		}
	}
	for i := range slots {
		sl := &slots[i]
		p := floorDiv(sl.t, period) * period
		if a.n > 0 && p != cur {
			emit()
		}
		cur = p
		a.add(sl)
		if sk != nil {
			sk.addPart(sketchPart(sl.sketch, lat))
		}
	}
	if a.n > 0 {
		emit()
	}
	return out, nil
}

// agg accumulates slots with 64-bit counts.
type agg struct {
	n, e4, e5, em    uint64
	instMin, instMax uint32
	perInst          float64
	lat              [2]struct{ sum, min, max float64 }
}

func (a *agg) add(s *slot) {
	if a.n == 0 {
		a.instMin, a.instMax = s.instMin, s.instMax
		for i := range a.lat {
			a.lat[i].min, a.lat[i].max = float64(s.lat[i].min), float64(s.lat[i].max)
		}
	} else {
		a.instMin = min(a.instMin, s.instMin)
		a.instMax = max(a.instMax, s.instMax)
		for i := range a.lat {
			a.lat[i].min = min(a.lat[i].min, float64(s.lat[i].min))
			a.lat[i].max = max(a.lat[i].max, float64(s.lat[i].max))
		}
	}
	a.n += uint64(s.n)
	a.e4 += uint64(s.e4)
	a.e5 += uint64(s.e5)
	a.em += uint64(s.em)
	a.perInst += s.perInst
	a.lat[0].sum += s.lat[0].sum
	a.lat[1].sum += s.lat[1].sum
}

// value computes a statistic as CloudWatch defines it over the period's
// data points: for the count metrics one point per request, 1 if the
// request counts (always, for Invocations) and 0 otherwise; for
// InvocationsPerInstance 1/instances per request; for the latencies the
// request's latency in microseconds. sk holds the merged latency sketch
// when the statistic is a percentile.
func (a *agg) value(m metric, st Statistic, sk *wide) float64 {
	n := float64(a.n)
	if j, ok := m.latency(); ok {
		l := a.lat[j]
		switch st.Kind {
		case SampleCount:
			return n
		case Sum:
			return l.sum
		case Average:
			return l.sum / n
		case Minimum:
			return l.min
		case Maximum:
			return l.max
		case Percentile:
			return sk.quantile(st.Percentile/100, a.n, l.min, l.max)
		}
		return 0
	}
	if m == mPerInstance {
		switch st.Kind {
		case SampleCount:
			return n
		case Sum:
			return a.perInst
		case Average:
			return a.perInst / n
		case Minimum:
			return 1 / float64(a.instMax)
		case Maximum:
			return 1 / float64(a.instMin)
		}
		return 0
	}
	var ones uint64
	switch m {
	case mInvocations:
		ones = a.n
	case m4XX:
		ones = a.e4
	case m5XX:
		ones = a.e5
	case mModelErrors:
		ones = a.em
	}
	switch st.Kind {
	case SampleCount:
		return n
	case Sum:
		return float64(ones)
	case Average:
		return float64(ones) / n
	case Minimum:
		if ones == a.n {
			return 1
		}
		return 0
	case Maximum:
		if ones > 0 {
			return 1
		}
		return 0
	case Percentile:
		if percentileRank(st.Percentile/100, a.n) < a.n-ones {
			return 0
		}
		return 1
	}
	return 0
}

// maxQuerySecond bounds the seconds a query's range is computed in, about
// 35,000 years either side of 1970: far beyond any data, and far enough
// from the int64 limits that no period arithmetic on them overflows.
const maxQuerySecond = 1 << 40

// secondsRange returns a query's range [Start, End) in Unix seconds,
// clamped to ±maxQuerySecond.
func secondsRange(start, end time.Time) (from, to int64) {
	clamp := func(s int64) int64 { return min(max(s, -maxQuerySecond), maxQuerySecond) }
	return clamp(ceilSecond(start)), clamp(ceilSecond(end))
}

func ceilSecond(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 && s < math.MaxInt64 {
		s++
	}
	return s
}

// MetricID names one metric as ListMetrics reports it.
type MetricID struct {
	Namespace  string
	MetricName string
	Dimensions []kiln.Dimension // EndpointName, then VariantName, then EndpointConfigName
}

// ListMetrics returns the metrics that have data within the retention, each
// under every dimension set Query answers: {EndpointName}, {EndpointName,
// VariantName} and {EndpointName, VariantName, EndpointConfigName}. An empty
// namespace or metric name matches all; dims keeps the metrics that have
// each named dimension, with the given value unless it is empty. The result
// is sorted by metric name, then dimensions.
func (st *Store) ListMetrics(namespace, metricName string, dims map[string]string) []MetricID {
	if namespace != "" && namespace != Namespace {
		return nil
	}
	names := metricNames[:]
	if metricName != "" {
		if _, ok := lookupMetric(metricName); !ok {
			return nil
		}
		names = []string{metricName}
	}
	now := st.clk.Now().Unix()
	st.gc(now)
	sets := map[string][]kiln.Dimension{}
	for _, s := range st.all() {
		if !s.hasData(now) {
			continue
		}
		e := kiln.Dimension{Name: DimEndpoint, Value: s.endpoint}
		v := kiln.Dimension{Name: DimVariant, Value: s.variant}
		c := kiln.Dimension{Name: DimConfig, Value: s.config}
		for _, set := range [][]kiln.Dimension{{e}, {e, v}, {e, v, c}} {
			if dimsMatch(set, dims) {
				sets[dimsKey(set)] = set
			}
		}
	}
	keys := make([]string, 0, len(sets))
	for k := range sets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]MetricID, 0, len(names)*len(keys))
	sorted := slices.Sorted(slices.Values(names))
	for _, n := range sorted {
		for _, k := range keys {
			out = append(out, MetricID{Namespace: Namespace, MetricName: n, Dimensions: slices.Clone(sets[k])})
		}
	}
	return out
}

func dimsMatch(set []kiln.Dimension, filter map[string]string) bool {
	for name, value := range filter {
		found := false
		for _, d := range set {
			if d.Name == name && (value == "" || d.Value == value) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func dimsKey(set []kiln.Dimension) string {
	var b strings.Builder
	for _, d := range set {
		b.WriteString(d.Value)
		b.WriteByte(0)
	}
	return b.String()
}

// hasData reports whether the series has a closed second or minute within
// the retention.
func (s *Series) hasData(now int64) bool {
	s.advance(now)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.secs.len() > 0 || s.mins.len() > 0
}

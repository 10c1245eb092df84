package ui

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kiln-serve/kiln"
)

// Backfill is how much past a stream's first snapshot carries: the charts of
// a page opened after a deployment start with it, however long ago the
// fleets it ran were retired (the metrics store keeps three hours at one
// second). Later snapshots carry the last few seconds only.
const Backfill = 15 * time.Minute

// reread is how many seconds before the previous snapshot's a snapshot
// reads again, so that requests that finished after a second was first
// read (a slow request is counted in the second it ends) are drawn too.
const reread = 4 * time.Second

// MetricSeries is the metrics of one variant and endpoint config of the
// endpoint, second by second, as the metrics store holds them. The store
// keeps the series of a retired fleet, so a green fleet that lived for one
// second and was rolled back is still here with the errors it answered.
type MetricSeries struct {
	VariantName        string `json:"VariantName"`
	EndpointConfigName string `json:"EndpointConfigName"`
	// Role is the role of the fleet that runs this config now, "" if no
	// fleet of the endpoint runs it any more.
	Role string `json:"Role,omitempty"`
	// Points are the seconds from the snapshot's SeriesFrom to its Second
	// that had requests, oldest first; a second without requests is absent.
	Points []MetricPoint `json:"Points"`
}

// MetricPoint is one second of a series.
type MetricPoint struct {
	Second time.Time `json:"Second"`
	FleetMetrics
}

// seriesKey names a series of the metrics store within an endpoint.
type seriesKey struct{ variant, config string }

// addSeries reads, for every variant and config the metrics store has data
// of for the endpoint, the seconds from the snapshot's SeriesFrom to its
// Second, and fills each fleet's Metrics from them.
func (s *stream) addSeries(ctx context.Context, snap *Snapshot) error {
	svc := s.h.svc
	from := snap.Second.Add(-Backfill + time.Second)
	if !s.lastSecond.IsZero() && s.lastSecond.Add(-reread).After(from) {
		from = s.lastSecond.Add(-reread)
	}
	if from.After(snap.Second) {
		from = snap.Second
	}
	snap.SeriesFrom = from
	ids, err := svc.ListMetrics(ctx, namespace, mInvocations, []kiln.Dimension{{Name: "EndpointName", Value: s.endpoint}})
	if err != nil {
		return fmt.Errorf("list the endpoint's metrics: %w", err)
	}
	roles := map[seriesKey]string{}
	for _, f := range snap.Fleets {
		k := seriesKey{f.VariantName, f.EndpointConfigName}
		if roles[k] != RoleGreen {
			roles[k] = f.Role
		}
	}
	seen := map[seriesKey]bool{}
	var keys []seriesKey
	for _, id := range ids {
		var k seriesKey
		n := 0
		for _, d := range id.Dimensions {
			switch d.Name {
			case "VariantName":
				k.variant = d.Value
				n++
			case "EndpointConfigName":
				k.config = d.Value
				n++
			}
		}
		if n == 2 && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	// Fleets with no requests yet have no series: list them all the same,
	// so that the charts show their zeros.
	for k := range roles {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b seriesKey) int {
		if a.variant != b.variant {
			return cmp.Compare(a.variant, b.variant)
		}
		return cmp.Compare(a.config, b.config)
	})
	end := snap.Second.Add(time.Second)
	latest := map[seriesKey]FleetMetrics{}
	for _, k := range keys {
		ms := MetricSeries{VariantName: k.variant, EndpointConfigName: k.config, Role: roles[k], Points: []MetricPoint{}}
		pts, err := s.readSeries(ctx, k, from, end)
		if err != nil {
			return fmt.Errorf("metrics of %s/%s: %w", k.variant, k.config, err)
		}
		ms.Points = pts
		if n := len(pts); n > 0 && pts[n-1].Second.Equal(snap.Second) {
			latest[k] = pts[n-1].FleetMetrics
		}
		snap.Series = append(snap.Series, ms)
	}
	for i := range snap.Fleets {
		f := &snap.Fleets[i]
		f.Metrics = latest[seriesKey{f.VariantName, f.EndpointConfigName}]
	}
	s.lastSecond = snap.Second
	return nil
}

// readSeries reads one series' seconds in [from, end), each with its
// counts and latency percentiles.
func (s *stream) readSeries(ctx context.Context, k seriesKey, from, end time.Time) ([]MetricPoint, error) {
	dims := []kiln.Dimension{
		{Name: "EndpointName", Value: s.endpoint},
		{Name: "VariantName", Value: k.variant},
		{Name: "EndpointConfigName", Value: k.config},
	}
	bySecond := map[int64]*MetricPoint{}
	var order []int64
	for _, q := range []struct {
		metric, stat string
		set          func(*MetricPoint, float64)
	}{
		{mInvocations, "Sum", func(p *MetricPoint, v float64) { p.Invocations = v }},
		{m4XX, "Sum", func(p *MetricPoint, v float64) { p.Invocation4XXErrors = v }},
		{m5XX, "Sum", func(p *MetricPoint, v float64) { p.Invocation5XXErrors = v }},
		{mModelLatency, "p50", func(p *MetricPoint, v float64) { p.ModelLatencyP50 = &v }},
		{mModelLatency, "p99", func(p *MetricPoint, v float64) { p.ModelLatencyP99 = &v }},
	} {
		pts, err := s.h.svc.GetMetricStatistics(ctx, kiln.MetricQuery{
			Namespace: namespace, MetricName: q.metric, Dimensions: dims, Statistic: q.stat,
			Period: 1, StartTime: from, EndTime: end,
		})
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", q.metric, q.stat, err)
		}
		for _, dp := range pts {
			t := dp.Timestamp.Unix()
			p := bySecond[t]
			if p == nil {
				p = &MetricPoint{Second: dp.Timestamp.UTC()}
				bySecond[t] = p
				order = append(order, t)
			}
			q.set(p, dp.Value)
		}
	}
	slices.Sort(order)
	out := make([]MetricPoint, 0, len(order))
	for _, t := range order {
		out = append(out, *bySecond[t])
	}
	return out, nil
}

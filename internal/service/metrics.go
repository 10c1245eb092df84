package service

import (
	"context"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/metrics"
)

func (s *service) GetMetricStatistics(ctx context.Context, q kiln.MetricQuery) ([]kiln.Datapoint, error) {
	// Checked before it is multiplied by a second, so that it cannot
	// overflow.
	if q.Period < 1 || q.Period > kiln.MaxQueryPeriodSeconds {
		return nil, kiln.Errorf(kiln.EINVALID, "Period must be a whole number of seconds from 1 to %d, got %d.", kiln.MaxQueryPeriodSeconds, q.Period)
	}
	pts, err := queryMetrics(s.metrics, s.custom, metrics.Query{
		Namespace: q.Namespace, MetricName: q.MetricName, Dimensions: dimensionMap(q.Dimensions), Statistic: q.Statistic,
		Period: time.Duration(q.Period) * time.Second, Start: q.StartTime, End: q.EndTime,
	})
	if err != nil {
		return nil, err
	}
	out := make([]kiln.Datapoint, len(pts))
	for i, p := range pts {
		out[i] = kiln.Datapoint{Timestamp: p.Timestamp, Value: p.Value, SampleCount: p.SampleCount}
	}
	return out, nil
}

func (s *service) ListMetrics(ctx context.Context, namespace, metricName string, dims []kiln.Dimension) ([]kiln.Metric, error) {
	ids := s.metrics.ListMetrics(namespace, metricName, dimensionMap(dims))
	ids = append(ids, s.custom.ListMetrics(namespace, metricName, dimensionMap(dims))...)
	out := make([]kiln.Metric, len(ids))
	for i, id := range ids {
		out[i] = kiln.Metric{Namespace: id.Namespace, MetricName: id.MetricName, Dimensions: id.Dimensions}
	}
	return out, nil
}

// dimensionMap is the metrics store's form of a dimension list.
func dimensionMap(dims []kiln.Dimension) map[string]string {
	m := make(map[string]string, len(dims))
	for _, d := range dims {
		m[d.Name] = d.Value
	}
	return m
}

func (s *service) PutMetricData(ctx context.Context, namespace string, data []kiln.MetricDatum) error {
	if err := kiln.ValidateMetricData(namespace, data, s.clk.Now()); err != nil {
		return err
	}
	points := make([]metrics.CustomDatum, len(data))
	for i, d := range data {
		p := metrics.CustomDatum{MetricName: d.MetricName, Dimensions: d.Dimensions, Timestamp: d.Timestamp}
		p.SampleCount, p.Sum, p.Min, p.Max = d.Stats()
		points[i] = p
	}
	return s.custom.Put(namespace, points)
}

// queryMetrics answers a query from Kiln's own metrics (AWS/SageMaker's
// namespace), or from those clients published (custom, if not nil).
func queryMetrics(m *metrics.Store, custom *metrics.Custom, q metrics.Query) ([]metrics.Datapoint, error) {
	if q.Namespace == "" || q.Namespace == metrics.Namespace || custom == nil {
		return m.Query(q)
	}
	return custom.Query(q)
}

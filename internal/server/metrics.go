package server

import (
	"context"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/metrics"
)

func (s *service) GetMetricStatistics(ctx context.Context, q kiln.MetricQuery) ([]kiln.Datapoint, error) {
	pts, err := s.metrics.Query(metrics.Query{
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

package server

import (
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/metrics"
	"github.com/kiln-serve/kiln/internal/service"
)

// metricsView gives the service Kiln's own metrics and those clients
// publish.
type metricsView struct {
	m      *metrics.Store
	custom *metrics.Custom
}

var _ service.Metrics = metricsView{}

func (v metricsView) Query(q kiln.MetricQuery) ([]kiln.Datapoint, error) {
	pts, err := queryMetrics(v.m, v.custom, metrics.Query{
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

func (v metricsView) List(namespace, metricName string, dims []kiln.Dimension) []kiln.Metric {
	ids := v.m.ListMetrics(namespace, metricName, dimensionMap(dims))
	ids = append(ids, v.custom.ListMetrics(namespace, metricName, dimensionMap(dims))...)
	out := make([]kiln.Metric, len(ids))
	for i, id := range ids {
		out[i] = kiln.Metric{Namespace: id.Namespace, MetricName: id.MetricName, Dimensions: id.Dimensions}
	}
	return out
}

func (v metricsView) Put(namespace string, data []kiln.MetricDatum) error {
	points := make([]metrics.CustomDatum, len(data))
	for i, d := range data {
		p := metrics.CustomDatum{MetricName: d.MetricName, Dimensions: d.Dimensions, Timestamp: d.Timestamp}
		p.SampleCount, p.Sum, p.Min, p.Max = d.Stats()
		points[i] = p
	}
	return v.custom.Put(namespace, points)
}

// dimensionMap is the metrics store's form of a dimension list.
func dimensionMap(dims []kiln.Dimension) map[string]string {
	m := make(map[string]string, len(dims))
	for _, d := range dims {
		m[d.Name] = d.Value
	}
	return m
}

// queryMetrics answers a query from Kiln's own metrics (AWS/SageMaker's
// namespace), or from those clients published (custom, if not nil).
func queryMetrics(m *metrics.Store, custom *metrics.Custom, q metrics.Query) ([]metrics.Datapoint, error) {
	if q.Namespace == "" || q.Namespace == metrics.Namespace || custom == nil {
		return m.Query(q)
	}
	return custom.Query(q)
}

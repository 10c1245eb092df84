package service

import (
	"context"

	"github.com/kiln-serve/kiln"
)

func (s *Service) GetMetricStatistics(ctx context.Context, q kiln.MetricQuery) ([]kiln.Datapoint, error) {
	// Checked before it is multiplied by a second, so that it cannot
	// overflow.
	if q.Period < 1 || q.Period > kiln.MaxQueryPeriodSeconds {
		return nil, kiln.Errorf(kiln.EINVALID, "Period must be a whole number of seconds from 1 to %d, got %d.", kiln.MaxQueryPeriodSeconds, q.Period)
	}
	if s.metrics == nil {
		return []kiln.Datapoint{}, nil
	}
	return s.metrics.Query(q)
}

func (s *Service) ListMetrics(ctx context.Context, namespace, metricName string, dims []kiln.Dimension) ([]kiln.Metric, error) {
	if s.metrics == nil {
		return []kiln.Metric{}, nil
	}
	return s.metrics.List(namespace, metricName, dims), nil
}

func (s *Service) PutMetricData(ctx context.Context, namespace string, data []kiln.MetricDatum) error {
	if err := kiln.ValidateMetricData(namespace, data, s.clk.Now()); err != nil {
		return err
	}
	if s.metrics == nil {
		return kiln.Errorf(kiln.EINVALID, "This Kiln keeps no published metrics.")
	}
	return s.metrics.Put(namespace, data)
}

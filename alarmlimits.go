package kiln

// CloudWatch's limits on a metric alarm, which every API that writes an
// alarm checks through Alarm.Validate. The evaluation range is CloudWatch's
// rule: Period × EvaluationPeriods at most one day for periods under an
// hour, at most seven days otherwise. Kiln's own rule is that Period may be
// any whole number of seconds (CloudWatch allows 10, 20, 30 and multiples of
// 60), so that one-second alarms watch a deployment closely.
const (
	MaxPeriodSeconds        = 86400
	MaxEvaluationSeconds    = 86400     // Period × EvaluationPeriods, for periods under an hour
	MaxLongEvaluationSecond = 7 * 86400 // Period × EvaluationPeriods, for periods of an hour or more
	MaxDimensions           = 30
	MaxDimensionNameLength  = 255
	MaxDimensionValueLength = 1024
	MaxNamespaceLength      = 255
	MaxMetricNameLength     = 255
	MaxAlarmDescription     = 1024
	MaxPrometheusURLLength  = 2048
	MaxPrometheusQuery      = 10240

	// MaxQueryPeriodSeconds bounds a metric query's Period, as CloudWatch's
	// 32-bit Period member does.
	MaxQueryPeriodSeconds = 1<<31 - 1
)

// MaxEvaluationPeriods returns the largest EvaluationPeriods CloudWatch
// allows with a period of p seconds (p from 1 to MaxPeriodSeconds). It
// divides rather than multiplies, so that no user number can overflow it.
func MaxEvaluationPeriods(p int) int {
	if p < 1 {
		return 0
	}
	if p < 3600 {
		return MaxEvaluationSeconds / p
	}
	return MaxLongEvaluationSecond / p
}

// validatePeriods checks Period, EvaluationPeriods and DatapointsToAlarm
// each on its own before relating them, so that no product of two user
// numbers is ever computed.
func (a *Alarm) validatePeriods() error {
	if a.Period < 1 || a.Period > MaxPeriodSeconds {
		return Errorf(EINVALID, "Period must be a whole number of seconds from 1 to %d, got %d.", MaxPeriodSeconds, a.Period)
	}
	maxN := MaxEvaluationPeriods(a.Period)
	if a.EvaluationPeriods < 1 || a.EvaluationPeriods > maxN {
		limit := "one day (86400 seconds) for periods under an hour"
		if a.Period >= 3600 {
			limit = "seven days (604800 seconds) for periods of an hour or more"
		}
		return Errorf(EINVALID, "EvaluationPeriods must be from 1 to %d with a Period of %d seconds, got %d: Period times EvaluationPeriods must not exceed %s.",
			maxN, a.Period, a.EvaluationPeriods, limit)
	}
	if a.DatapointsToAlarm < 0 || a.DatapointsToAlarm > a.EvaluationPeriods {
		return Errorf(EINVALID, "DatapointsToAlarm must be between 1 and EvaluationPeriods (%d), got %d.", a.EvaluationPeriods, a.DatapointsToAlarm)
	}
	return nil
}

// validateMetric checks the lengths and counts of what names the metric.
func (a *Alarm) validateMetric() error {
	if len(a.Namespace) > MaxNamespaceLength {
		return Errorf(EINVALID, "Namespace must be at most %d characters.", MaxNamespaceLength)
	}
	if len(a.MetricName) > MaxMetricNameLength {
		return Errorf(EINVALID, "MetricName must be at most %d characters.", MaxMetricNameLength)
	}
	if len(a.Unit) > 64 {
		return Errorf(EINVALID, "Unit must be at most 64 characters.")
	}
	if p := a.Prometheus; p != nil {
		if len(p.URL) > MaxPrometheusURLLength {
			return Errorf(EINVALID, "Prometheus.URL must be at most %d characters.", MaxPrometheusURLLength)
		}
		if len(p.Query) > MaxPrometheusQuery {
			return Errorf(EINVALID, "Prometheus.Query must be at most %d characters.", MaxPrometheusQuery)
		}
	}
	if len(a.Dimensions) > MaxDimensions {
		return Errorf(EINVALID, "Dimensions has %d entries; at most %d are allowed.", len(a.Dimensions), MaxDimensions)
	}
	for i, d := range a.Dimensions {
		if d.Name == "" || d.Value == "" {
			return Errorf(EINVALID, "Dimensions[%d] needs both Name and Value.", i)
		}
		if len(d.Name) > MaxDimensionNameLength || len(d.Value) > MaxDimensionValueLength {
			return Errorf(EINVALID, "Dimensions[%d]: Name must be at most %d characters and Value at most %d.", i, MaxDimensionNameLength, MaxDimensionValueLength)
		}
	}
	return nil
}

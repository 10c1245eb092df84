package sim

import (
	"fmt"
	"time"

	"github.com/kiln-serve/kiln"
)

// Baseline is the old fleet of every experiment: 0.1% of requests fail,
// latencies are lognormal with a median of 50 ms and a p99 of 160 ms.
var Baseline = Fleet{ErrorRate: 0.001, Median: 50 * time.Millisecond, Sigma: 0.5}

// JudgeMethod rolls back on a judge alarm with the defaults: α = 0.01, a
// tolerance of 10%, errors and latency.
func JudgeMethod() Method {
	return Method{Name: "judge", Alarms: []kiln.Alarm{{
		AlarmName: "judge",
		Judge:     &kiln.JudgeSpec{EndpointName: Endpoint},
	}}}
}

// Thresholds of the threshold alarms, as a SageMaker user would set them on
// the new fleet (the EndpointConfigName dimension): an error rate above 1%
// (Invocation5XXErrors Average > 0.01), or a p99 ModelLatency more than 1.5
// times the old fleet's usual p99. Each alarm goes off on one breaching
// period (EvaluationPeriods 1), and a period without requests does not
// breach (TreatMissingData notBreaching).
const (
	ErrorRateThreshold = 0.01
	LatencyHeadroom    = 1.5
)

// ThresholdMethod rolls back on a pair of threshold alarms over periods of
// the given length: the new fleet's error rate, and its p99 latency against
// the old fleet's p99 (blueP99) with LatencyHeadroom.
func ThresholdMethod(period int, blueP99 time.Duration) Method {
	suffix := fmt.Sprintf("-%ds", period)
	return Method{Name: fmt.Sprintf("threshold, %d s", period), Alarms: []kiln.Alarm{
		greenAlarm("errors"+suffix, "Invocation5XXErrors", "Average", "", period, ErrorRateThreshold),
		greenAlarm("latency"+suffix, "ModelLatency", "", "p99", period, LatencyHeadroom*float64(blueP99/time.Microsecond)),
	}}
}

func greenAlarm(name, metric, stat, extended string, period int, threshold float64) kiln.Alarm {
	return kiln.Alarm{
		AlarmName: name, Namespace: "AWS/SageMaker", MetricName: metric,
		Dimensions: []kiln.Dimension{
			{Name: "EndpointName", Value: Endpoint}, {Name: "VariantName", Value: Variant},
			{Name: "EndpointConfigName", Value: GreenCfg},
		},
		Statistic: stat, ExtendedStatistic: extended,
		Period: period, EvaluationPeriods: 1, Threshold: threshold,
		ComparisonOperator: kiln.GreaterThanThreshold, TreatMissingData: kiln.MissingNotBreaching,
	}
}

// Methods are the methods the experiments compare.
func Methods() []Method {
	p99 := Baseline.P99()
	return []Method{JudgeMethod(), ThresholdMethod(60, p99), ThresholdMethod(1, p99)}
}

package metrics

import (
	"strconv"

	"github.com/kiln-serve/kiln"
)

// Namespace is the CloudWatch namespace of every metric Kiln records.
const Namespace = "AWS/SageMaker"

// Metric names, as SageMaker publishes them.
const (
	Invocations            = "Invocations"
	Invocation4XXErrors    = "Invocation4XXErrors"
	Invocation5XXErrors    = "Invocation5XXErrors"
	InvocationModelErrors  = "InvocationModelErrors"
	InvocationsPerInstance = "InvocationsPerInstance"
	ModelLatency           = "ModelLatency"
	OverheadLatency        = "OverheadLatency"
)

// Dimension names.
const (
	DimEndpoint = "EndpointName"
	DimVariant  = "VariantName"
	DimConfig   = "EndpointConfigName"
)

// metric says how a metric is derived from a slot's fields.
type metric int

const (
	mInvocations metric = iota
	m4XX
	m5XX
	mModelErrors
	mPerInstance
	mModelLatency
	mOverheadLatency
)

var metricNames = [...]string{
	mInvocations:     Invocations,
	m4XX:             Invocation4XXErrors,
	m5XX:             Invocation5XXErrors,
	mModelErrors:     InvocationModelErrors,
	mPerInstance:     InvocationsPerInstance,
	mModelLatency:    ModelLatency,
	mOverheadLatency: OverheadLatency,
}

func lookupMetric(name string) (metric, bool) {
	for m, n := range metricNames {
		if n == name {
			return metric(m), true
		}
	}
	return 0, false
}

// latency reports which latency a metric is (0 model, 1 overhead), if any.
func (m metric) latency() (int, bool) {
	switch m {
	case mModelLatency:
		return 0, true
	case mOverheadLatency:
		return 1, true
	}
	return 0, false
}

// Unit returns the CloudWatch unit of a metric ("Microseconds" for the
// latencies, "None" for the others), or false for a name Kiln does not record.
func Unit(metricName string) (string, bool) {
	m, ok := lookupMetric(metricName)
	if !ok {
		return "", false
	}
	if _, lat := m.latency(); lat {
		return "Microseconds", true
	}
	return "None", true
}

// StatKind is the kind of a Statistic.
type StatKind int

// Statistic kinds, with CloudWatch's meanings over the data points of a
// period (for the count metrics, one data point of 0 or 1 per request).
const (
	SampleCount StatKind = iota + 1
	Sum
	Average
	Minimum
	Maximum
	Percentile
)

var statNames = map[string]StatKind{
	"SampleCount": SampleCount,
	"Sum":         Sum,
	"Average":     Average,
	"Minimum":     Minimum,
	"Maximum":     Maximum,
}

// Statistic is a parsed CloudWatch statistic: one of the five simple ones,
// or a percentile (an extended statistic such as "p99.9").
type Statistic struct {
	Kind StatKind
	// Percentile is 0..100 when Kind is Percentile, else 0.
	Percentile float64
}

// ParseStatistic parses SampleCount, Sum, Average, Minimum, Maximum, or an
// extended statistic pNN.NN (a percentile 0..100 with up to 10 decimals, as
// CloudWatch accepts). Trimmed means and other extended statistics are not
// supported.
func ParseStatistic(s string) (Statistic, error) {
	if k, ok := statNames[s]; ok {
		return Statistic{Kind: k}, nil
	}
	if p, ok := kiln.ParsePercentile(s); ok {
		return Statistic{Kind: Percentile, Percentile: p}, nil
	}
	return Statistic{}, kiln.Errorf(kiln.EINVALID,
		"Statistic %q is not one of SampleCount, Sum, Average, Minimum, Maximum or a percentile such as p99 or p99.9.", s)
}

// String returns the statistic as CloudWatch spells it; it parses back to
// the same Statistic.
func (s Statistic) String() string {
	if s.Kind == Percentile {
		return "p" + strconv.FormatFloat(s.Percentile, 'f', -1, 64)
	}
	for n, k := range statNames {
		if k == s.Kind {
			return n
		}
	}
	return ""
}

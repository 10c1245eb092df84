package kiln

import (
	"math"
	"regexp"
	"strconv"
	"time"
)

// Alarm states.
const (
	StateOK               = "OK"
	StateAlarm            = "ALARM"
	StateInsufficientData = "INSUFFICIENT_DATA"
)

// Comparison operators.
const (
	GreaterThanOrEqualToThreshold = "GreaterThanOrEqualToThreshold"
	GreaterThanThreshold          = "GreaterThanThreshold"
	LessThanThreshold             = "LessThanThreshold"
	LessThanOrEqualToThreshold    = "LessThanOrEqualToThreshold"
)

// TreatMissingData values.
const (
	MissingMissing      = "missing"
	MissingIgnore       = "ignore"
	MissingBreaching    = "breaching"
	MissingNotBreaching = "notBreaching"
)

// EvaluateLowSampleCountPercentile values.
const (
	LowSampleEvaluate = "evaluate"
	LowSampleIgnore   = "ignore"
)

// Dimension narrows a metric, e.g. EndpointName=demo.
type Dimension struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

// Alarm is a metric alarm with CloudWatch's semantics (REFERENCE.md §6),
// with its current state.
type Alarm struct {
	AlarmName                        string      `json:"AlarmName"`
	AlarmArn                         string      `json:"AlarmArn,omitempty"`
	AlarmDescription                 string      `json:"AlarmDescription,omitempty"`
	ActionsEnabled                   *bool       `json:"ActionsEnabled,omitempty"`
	Namespace                        string      `json:"Namespace,omitempty"`
	MetricName                       string      `json:"MetricName,omitempty"`
	Dimensions                       []Dimension `json:"Dimensions,omitempty"`
	Statistic                        string      `json:"Statistic,omitempty"`
	ExtendedStatistic                string      `json:"ExtendedStatistic,omitempty"`
	Unit                             string      `json:"Unit,omitempty"`
	Period                           int         `json:"Period"`
	EvaluationPeriods                int         `json:"EvaluationPeriods"`
	DatapointsToAlarm                int         `json:"DatapointsToAlarm,omitempty"`
	Threshold                        float64     `json:"Threshold"`
	ComparisonOperator               string      `json:"ComparisonOperator"`
	TreatMissingData                 string      `json:"TreatMissingData,omitempty"`
	EvaluateLowSampleCountPercentile string      `json:"EvaluateLowSampleCountPercentile,omitempty"`
	Tags                             []Tag       `json:"Tags,omitempty"`

	// Prometheus, when set, takes the alarm's data points from a PromQL
	// query instead of Kiln's own metrics.
	Prometheus *PrometheusSource `json:"Prometheus,omitempty"`
	// Judge, when set, makes this a statistical judge alarm comparing an
	// endpoint's new fleet with its old one instead of a threshold alarm.
	Judge *JudgeSpec `json:"Judge,omitempty"`

	AlarmConfigurationUpdatedTimestamp time.Time `json:"AlarmConfigurationUpdatedTimestamp"`
	AlarmState
}

// AlarmState is an alarm's current state.
type AlarmState struct {
	StateValue                 string    `json:"StateValue"`
	StateReason                string    `json:"StateReason"`
	StateReasonData            string    `json:"StateReasonData,omitempty"`
	StateUpdatedTimestamp      time.Time `json:"StateUpdatedTimestamp"`
	StateTransitionedTimestamp time.Time `json:"StateTransitionedTimestamp"`
}

// PrometheusSource is a PromQL query whose result is the alarm's metric.
type PrometheusSource struct {
	// URL is the Prometheus server's base URL, e.g. http://127.0.0.1:9090.
	URL string `json:"URL"`
	// Query is a PromQL expression returning one series (or a scalar); its
	// value at each period's end is the data point.
	Query string `json:"Query"`
}

// JudgeSpec configures a statistical judge alarm.
type JudgeSpec struct {
	EndpointName string   `json:"EndpointName"`
	Alpha        float64  `json:"Alpha,omitempty"`
	Tolerance    float64  `json:"Tolerance,omitempty"`
	Metrics      []string `json:"Metrics,omitempty"`
}

// AlarmHistoryItem is one entry of an alarm's history.
type AlarmHistoryItem struct {
	AlarmName       string    `json:"AlarmName"`
	Timestamp       time.Time `json:"Timestamp"`
	HistoryItemType string    `json:"HistoryItemType"` // StateUpdate | ConfigurationUpdate
	HistorySummary  string    `json:"HistorySummary"`
	HistoryData     string    `json:"HistoryData,omitempty"`
}

var extendedStatRE = regexp.MustCompile(`^p(\d{1,2}(\.\d{1,10})?|100)$`)

// ParsePercentile returns the percentile of an extended statistic such as
// "p99.9", or false.
func ParsePercentile(s string) (float64, bool) {
	if !extendedStatRE.MatchString(s) {
		return 0, false
	}
	p, err := strconv.ParseFloat(s[1:], 64)
	if err != nil || p < 0 || p > 100 {
		return 0, false
	}
	return p, true
}

// Statistics CloudWatch names.
var statistics = map[string]bool{"SampleCount": true, "Average": true, "Sum": true, "Minimum": true, "Maximum": true}

// ValidStatistic reports whether s is a simple statistic name.
func ValidStatistic(s string) bool { return statistics[s] }

// Validate checks an alarm definition as submitted.
func (a *Alarm) Validate() error {
	if a.AlarmName == "" || len(a.AlarmName) > MaxAlarmNameLength {
		return Errorf(EINVALID, "AlarmName must be 1 to %d characters.", MaxAlarmNameLength)
	}
	if len(a.AlarmDescription) > 1024 {
		return Errorf(EINVALID, "AlarmDescription must be at most 1024 characters.")
	}
	if a.Judge != nil {
		return a.validateJudge()
	}
	if a.Prometheus == nil {
		if a.MetricName == "" {
			return Errorf(EINVALID, "MetricName is required.")
		}
		if a.Namespace == "" {
			return Errorf(EINVALID, "Namespace is required.")
		}
	} else {
		if a.Prometheus.URL == "" || a.Prometheus.Query == "" {
			return Errorf(EINVALID, "Prometheus.URL and Prometheus.Query are both required.")
		}
	}
	if len(a.Dimensions) > 30 {
		return Errorf(EINVALID, "Dimensions has %d entries; at most 30 are allowed.", len(a.Dimensions))
	}
	for i, d := range a.Dimensions {
		if d.Name == "" || d.Value == "" {
			return Errorf(EINVALID, "Dimensions[%d] needs both Name and Value.", i)
		}
	}
	switch {
	case a.Statistic != "" && a.ExtendedStatistic != "":
		return Errorf(EINVALID, "Specify either Statistic or ExtendedStatistic, not both.")
	case a.Statistic == "" && a.ExtendedStatistic == "":
		return Errorf(EINVALID, "One of Statistic or ExtendedStatistic is required.")
	case a.Statistic != "" && !ValidStatistic(a.Statistic):
		return Errorf(EINVALID, "Statistic %q is not one of SampleCount, Average, Sum, Minimum, Maximum.", a.Statistic)
	case a.ExtendedStatistic != "":
		if _, ok := ParsePercentile(a.ExtendedStatistic); !ok {
			return Errorf(EINVALID, "ExtendedStatistic %q is not a percentile such as p99 or p99.9.", a.ExtendedStatistic)
		}
	}
	if a.Period < 1 || a.Period > 86400 {
		return Errorf(EINVALID, "Period must be a whole number of seconds from 1 to 86400, got %d.", a.Period)
	}
	if a.EvaluationPeriods < 1 {
		return Errorf(EINVALID, "EvaluationPeriods must be at least 1, got %d.", a.EvaluationPeriods)
	}
	if a.Period*a.EvaluationPeriods > 7*86400 {
		return Errorf(EINVALID, "Period times EvaluationPeriods must not exceed one week.")
	}
	if a.DatapointsToAlarm < 0 || a.DatapointsToAlarm > a.EvaluationPeriods {
		return Errorf(EINVALID, "DatapointsToAlarm must be between 1 and EvaluationPeriods (%d), got %d.", a.EvaluationPeriods, a.DatapointsToAlarm)
	}
	if math.IsNaN(a.Threshold) || math.IsInf(a.Threshold, 0) {
		return Errorf(EINVALID, "Threshold must be a finite number.")
	}
	switch a.ComparisonOperator {
	case GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold:
	case "":
		return Errorf(EINVALID, "ComparisonOperator is required.")
	default:
		return Errorf(EINVALID, "ComparisonOperator %q is not one of GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold.", a.ComparisonOperator)
	}
	switch a.TreatMissingData {
	case "", MissingMissing, MissingIgnore, MissingBreaching, MissingNotBreaching:
	default:
		return Errorf(EINVALID, "TreatMissingData %q is not one of missing, ignore, breaching, notBreaching.", a.TreatMissingData)
	}
	switch a.EvaluateLowSampleCountPercentile {
	case "", LowSampleEvaluate, LowSampleIgnore:
	default:
		return Errorf(EINVALID, "EvaluateLowSampleCountPercentile %q is not one of evaluate, ignore.", a.EvaluateLowSampleCountPercentile)
	}
	return validateTags(a.Tags)
}

func (a *Alarm) validateJudge() error {
	j := a.Judge
	if err := ValidateName("Judge.EndpointName", j.EndpointName); err != nil {
		return err
	}
	if j.Alpha < 0 || j.Alpha >= 0.5 {
		return Errorf(EINVALID, "Judge.Alpha must be above 0 and below 0.5, got %v.", j.Alpha)
	}
	if j.Tolerance < 0 || j.Tolerance > 10 {
		return Errorf(EINVALID, "Judge.Tolerance must be between 0 and 10 (a relative regression), got %v.", j.Tolerance)
	}
	for _, m := range j.Metrics {
		if m != "errors" && m != "latency" {
			return Errorf(EINVALID, "Judge.Metrics: %q is not one of errors, latency.", m)
		}
	}
	return nil
}

// Datapoints returns DatapointsToAlarm with its default (all of N).
func (a *Alarm) Datapoints() int {
	if a.DatapointsToAlarm == 0 {
		return a.EvaluationPeriods
	}
	return a.DatapointsToAlarm
}

// MissingData returns TreatMissingData with its default.
func (a *Alarm) MissingData() string {
	if a.TreatMissingData == "" {
		return MissingMissing
	}
	return a.TreatMissingData
}

// Stat returns the statistic the alarm evaluates.
func (a *Alarm) Stat() string {
	if a.ExtendedStatistic != "" {
		return a.ExtendedStatistic
	}
	return a.Statistic
}

// Dimension returns the value of the named dimension, or "".
func (a *Alarm) Dimension(name string) string {
	for _, d := range a.Dimensions {
		if d.Name == name {
			return d.Value
		}
	}
	return ""
}

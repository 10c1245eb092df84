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
	// AlarmRule, when set, makes this a composite alarm: in ALARM while
	// the rule (see ParseAlarmRule) holds of the other alarms' states, OK
	// otherwise.
	AlarmRule string `json:"AlarmRule,omitempty"`

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

// JudgeSpec configures a statistical judge alarm. During a blue/green
// deployment of EndpointName, while the old fleet (blue) and the new one
// (green) both take traffic, the judge asks after every request whether
// green is worse than blue, with anytime-valid sequential tests whose
// chance of a false alarm stays below Alpha however often they are looked
// at (see docs/judge.md). The alarm is in ALARM once green is shown worse,
// OK once enough requests reached both fleets without that, and
// INSUFFICIENT_DATA before.
type JudgeSpec struct {
	// EndpointName is the endpoint whose deployments the judge watches.
	EndpointName string `json:"EndpointName"`
	// Alpha bounds the probability that the judge ever goes to ALARM
	// during a deployment whose new fleet is not worse than its old one
	// beyond Tolerance. If zero, DefaultJudgeAlpha.
	Alpha float64 `json:"Alpha,omitempty"`
	// Tolerance is the smallest relative regression that matters: the
	// judge goes to ALARM only when green's error rate exceeds
	// (1+Tolerance) times blue's, or green's latencies divided by
	// (1+Tolerance) are still longer than blue's. If nil,
	// DefaultJudgeTolerance; 0 means no regression at all is tolerated.
	Tolerance *float64 `json:"Tolerance,omitempty"`
	// Metrics lists what is judged: "errors" (model errors and 5xx
	// answers), "latency" (model latency). If empty, both.
	Metrics []string `json:"Metrics,omitempty"`
	// MinRequests is how many requests each fleet must have answered
	// while both took traffic before the judge gives a verdict (OK); until
	// then it is INSUFFICIENT_DATA. Evidence of a regression goes to ALARM
	// whatever the count. If zero, DefaultJudgeMinRequests.
	MinRequests int `json:"MinRequests,omitempty"`
	// InsufficientData says what a bake does when its time is up and the
	// judge has no verdict yet: "wait" (the default) extends the bake
	// until the judge reaches one or the deployment reaches
	// MaximumExecutionTimeoutInSeconds, which rolls it back; "pass" lets
	// the bake end, as for any alarm not in ALARM.
	InsufficientData string `json:"InsufficientData,omitempty"`
	// EarlyPromotion lets a bake end before its time once the judge has
	// shown, with the same confidence 1-Alpha, that green is not worse
	// than blue beyond Tolerance in every metric judged.
	EarlyPromotion bool `json:"EarlyPromotion,omitempty"`
}

// Judge defaults and policies.
const (
	DefaultJudgeAlpha       = 0.01
	DefaultJudgeTolerance   = 0.1
	DefaultJudgeMinRequests = 100

	JudgeErrors  = "errors"
	JudgeLatency = "latency"

	JudgeWait = "wait"
	JudgePass = "pass"
)

// AlphaOrDefault returns Alpha with its default.
func (j *JudgeSpec) AlphaOrDefault() float64 {
	if j.Alpha == 0 {
		return DefaultJudgeAlpha
	}
	return j.Alpha
}

// ToleranceOrDefault returns Tolerance with its default.
func (j *JudgeSpec) ToleranceOrDefault() float64 {
	if j.Tolerance == nil {
		return DefaultJudgeTolerance
	}
	return *j.Tolerance
}

// MinRequestsOrDefault returns MinRequests with its default.
func (j *JudgeSpec) MinRequestsOrDefault() int {
	if j.MinRequests == 0 {
		return DefaultJudgeMinRequests
	}
	return j.MinRequests
}

// Judges reports whether the judge judges a metric (JudgeErrors or
// JudgeLatency).
func (j *JudgeSpec) Judges(metric string) bool {
	if len(j.Metrics) == 0 {
		return metric == JudgeErrors || metric == JudgeLatency
	}
	for _, m := range j.Metrics {
		if m == metric {
			return true
		}
	}
	return false
}

// Waits reports whether a bake waits for the judge's verdict
// (InsufficientData "wait", the default).
func (j *JudgeSpec) Waits() bool { return j.InsufficientData != JudgePass }

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
	if len(a.AlarmDescription) > MaxAlarmDescription {
		return Errorf(EINVALID, "AlarmDescription must be at most %d characters.", MaxAlarmDescription)
	}
	if a.AlarmRule != "" {
		return a.validateComposite()
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
	if err := a.validateMetric(); err != nil {
		return err
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
	if err := a.validatePeriods(); err != nil {
		return err
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

func (a *Alarm) validateComposite() error {
	if a.Judge != nil || a.Prometheus != nil || a.MetricName != "" || a.Namespace != "" || len(a.Dimensions) > 0 ||
		a.Statistic != "" || a.ExtendedStatistic != "" || a.Period != 0 || a.EvaluationPeriods != 0 || a.ComparisonOperator != "" {
		return Errorf(EINVALID, "A composite alarm (AlarmRule) takes no metric, statistic, period, threshold, Prometheus query or Judge: its state follows its rule.")
	}
	r, err := ParseAlarmRule(a.AlarmRule)
	if err != nil {
		return err
	}
	for _, c := range r.Children() {
		if c == a.AlarmName {
			return Errorf(EINVALID, "AlarmRule names the alarm %q itself.", c)
		}
	}
	return validateTags(a.Tags)
}

func (a *Alarm) validateJudge() error {
	j := a.Judge
	if a.MetricName != "" || a.Prometheus != nil {
		return Errorf(EINVALID, "A judge alarm takes no MetricName or Prometheus query: it compares the fleets of Judge.EndpointName itself.")
	}
	if err := ValidateName("Judge.EndpointName", j.EndpointName); err != nil {
		return err
	}
	// NaN fails every comparison, so each range is written to let it fail.
	if !(j.Alpha == 0 || (j.Alpha > 0 && j.Alpha <= 0.5)) {
		return Errorf(EINVALID, "Judge.Alpha must be above 0 and at most 0.5 (omit it for %v), got %v.", DefaultJudgeAlpha, j.Alpha)
	}
	if t := j.Tolerance; t != nil && !(*t >= 0 && *t <= 10) {
		return Errorf(EINVALID, "Judge.Tolerance must be from 0 to 10 (a relative regression: 0.1 is 10%%), got %v.", *t)
	}
	seen := map[string]bool{}
	for _, m := range j.Metrics {
		if m != JudgeErrors && m != JudgeLatency {
			return Errorf(EINVALID, "Judge.Metrics: %q is not one of errors, latency.", m)
		}
		if seen[m] {
			return Errorf(EINVALID, "Judge.Metrics lists %q twice.", m)
		}
		seen[m] = true
	}
	if j.MinRequests < 0 || j.MinRequests > 1_000_000_000 {
		return Errorf(EINVALID, "Judge.MinRequests must be from 1 to 1000000000 (omit it for %d), got %d.", DefaultJudgeMinRequests, j.MinRequests)
	}
	switch j.InsufficientData {
	case "", JudgeWait, JudgePass:
	default:
		return Errorf(EINVALID, "Judge.InsufficientData %q is not one of wait, pass.", j.InsufficientData)
	}
	return validateTags(a.Tags)
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

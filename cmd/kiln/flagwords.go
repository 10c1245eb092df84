package main

import (
	"regexp"

	"github.com/kiln-serve/kiln"
)

// alarmFlagWords turns the alarm fields the server names in its error
// messages into the flags of `kiln alarms put` and `put-judge` that set
// them: the user typed flags, not API fields.
var alarmFlagWords = []struct {
	re   *regexp.Regexp
	flag string
}{
	{regexp.MustCompile(`One of Statistic or ExtendedStatistic is required\.`), "--statistic is required: SampleCount, Average, Sum, Minimum, Maximum, or a percentile such as p99."},
	{regexp.MustCompile(`^MetricName is required\.`), "--metric is required (or --prometheus-url and --promql, or --rule for a composite alarm)."},
	{regexp.MustCompile(`Prometheus\.URL and Prometheus\.Query`), "--prometheus-url and --promql"},
	{regexp.MustCompile(`\bJudge\.Alpha\b`), "--alpha"},
	{regexp.MustCompile(`\bJudge\.Tolerance\b`), "--tolerance"},
	{regexp.MustCompile(`\bJudge\.Metrics\b`), "--metrics"},
	{regexp.MustCompile(`\bJudge\.MinRequests\b`), "--min-requests"},
	{regexp.MustCompile(`\bJudge\.InsufficientData\b`), "--insufficient-data"},
	{regexp.MustCompile(`\bJudge\.EndpointName\b`), "--endpoint"},
	{regexp.MustCompile(`\b(Extended)?Statistic\b`), "--statistic"},
	{regexp.MustCompile(`\bComparisonOperator\b`), "--comparison"},
	{regexp.MustCompile(`\bTreatMissingData\b`), "--treat-missing-data"},
	{regexp.MustCompile(`\bEvaluateLowSampleCountPercentile\b`), "--low-sample-count-percentile"},
	{regexp.MustCompile(`\bEvaluationPeriods\b`), "--evaluation-periods"},
	{regexp.MustCompile(`\bDatapointsToAlarm\b`), "--datapoints-to-alarm"},
	{regexp.MustCompile(`\bPeriod\b`), "--period"},
	{regexp.MustCompile(`\bThreshold\b`), "--threshold"},
	{regexp.MustCompile(`\bMetricName\b`), "--metric"},
	{regexp.MustCompile(`\bNamespace\b`), "--namespace"},
	{regexp.MustCompile(`\bAlarmRule\b`), "--rule"},
	{regexp.MustCompile(`\bAlarmDescription\b`), "--description"},
}

// inFlagWords rewrites an invalid-alarm error in the flags' words; other
// errors pass unchanged.
func inFlagWords(err error) error {
	if kiln.ErrorCode(err) != kiln.EINVALID {
		return err
	}
	msg := kiln.ErrorMessage(err)
	for _, w := range alarmFlagWords {
		msg = w.re.ReplaceAllLiteralString(msg, w.flag)
	}
	return kiln.Errorf(kiln.EINVALID, "%s", msg)
}

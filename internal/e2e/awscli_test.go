package e2e

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// awsCLI is the AWS CLI as Debian packages it (package awscli). Its
// CloudWatch client speaks awsQuery. Another "aws" may come first on PATH
// (a pyenv shim, a newer CLI speaking another protocol), so the path is
// explicit.
const awsCLI = "/usr/bin/aws"

type cliRunner struct {
	t   *testing.T
	url string
	env []string
}

func newCLIRunner(t *testing.T, url, secret string) *cliRunner {
	t.Helper()
	if _, err := os.Stat(awsCLI); err != nil {
		if os.Getenv("KILN_REQUIRE_SERVERS") == "1" {
			t.Fatalf("%s is missing (install the Debian package awscli): %v", awsCLI, err)
		}
		t.Skipf("%s is missing (install the Debian package awscli)", awsCLI)
	}
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"PATH=/usr/bin:/bin",
		"AWS_ACCESS_KEY_ID=" + cwKeyID,
		"AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + home + "/config",
		"AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials",
		"AWS_PAGER=",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1",
	}
	return &cliRunner{t: t, url: url, env: env}
}

// run runs `aws cloudwatch <args> --endpoint-url <url> --output json`.
func (c *cliRunner) run(args ...string) (stdout, stderr string, err error) {
	args = append([]string{"cloudwatch"}, args...)
	args = append(args, "--endpoint-url", c.url, "--output", "json")
	cmd := exec.Command(awsCLI, args...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		err = <-done
	}
	c.t.Logf("aws cloudwatch %s: %v", args[1], time.Since(t0))
	return out.String(), errb.String(), err
}

func (c *cliRunner) mustJSON(v any, args ...string) {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("aws cloudwatch %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	if v == nil {
		return
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("aws cloudwatch %s printed %q: %v", strings.Join(args, " "), out, err)
	}
}

type cliAlarms struct {
	MetricAlarms []struct {
		AlarmName, AlarmArn, StateValue, StateReason, MetricName, Namespace, Statistic, ComparisonOperator, TreatMissingData string
		Period, EvaluationPeriods, DatapointsToAlarm                                                                         int
		Threshold                                                                                                            float64
		ActionsEnabled                                                                                                       bool
		StateUpdatedTimestamp                                                                                                string
		Dimensions                                                                                                           []struct{ Name, Value string }
	}
	CompositeAlarms []json.RawMessage
}

// The Debian AWS CLI drives an alarm through its life with nothing but
// --endpoint-url pointing at Kiln.
func TestAWSCLICloudWatch(t *testing.T) {
	k := startCloudWatchKiln(t, false)
	cli := newCLIRunner(t, k.cwURL, cwSecret)

	cli.mustJSON(nil, "put-metric-alarm", "--alarm-name", "cli-5xx",
		"--alarm-description", "5XX errors on cli-ep",
		"--namespace", "AWS/SageMaker", "--metric-name", "Invocation5XXErrors",
		"--dimensions", "Name=EndpointName,Value=cli-ep", "Name=VariantName,Value=AllTraffic",
		"--statistic", "Sum", "--period", "60", "--evaluation-periods", "3", "--datapoints-to-alarm", "2",
		"--threshold", "1.5", "--comparison-operator", "GreaterThanOrEqualToThreshold",
		"--treat-missing-data", "ignore", "--tags", "Key=team,Value=ml")

	var alarms cliAlarms
	cli.mustJSON(&alarms, "describe-alarms", "--alarm-names", "cli-5xx")
	if len(alarms.MetricAlarms) != 1 {
		t.Fatalf("describe-alarms = %+v", alarms)
	}
	a := alarms.MetricAlarms[0]
	if a.AlarmName != "cli-5xx" || a.StateValue != "INSUFFICIENT_DATA" || a.Period != 60 || a.EvaluationPeriods != 3 || a.DatapointsToAlarm != 2 ||
		a.Threshold != 1.5 || a.Statistic != "Sum" || a.TreatMissingData != "ignore" || !a.ActionsEnabled || len(a.Dimensions) != 2 ||
		a.Dimensions[0].Name != "EndpointName" || a.Dimensions[0].Value != "cli-ep" || a.StateUpdatedTimestamp == "" {
		t.Errorf("alarm = %+v", a)
	}

	cli.mustJSON(nil, "set-alarm-state", "--alarm-name", "cli-5xx", "--state-value", "ALARM", "--state-reason", "testing from the CLI")
	alarms = cliAlarms{}
	cli.mustJSON(&alarms, "describe-alarms", "--state-value", "ALARM")
	if len(alarms.MetricAlarms) != 1 || alarms.MetricAlarms[0].StateReason != "testing from the CLI" {
		t.Fatalf("describe-alarms --state-value ALARM = %+v", alarms)
	}

	var hist struct {
		AlarmHistoryItems []struct{ AlarmName, HistoryItemType, HistorySummary, Timestamp string }
	}
	cli.mustJSON(&hist, "describe-alarm-history", "--alarm-name", "cli-5xx", "--history-item-type", "StateUpdate")
	if len(hist.AlarmHistoryItems) != 1 || hist.AlarmHistoryItems[0].HistorySummary != "Alarm updated from INSUFFICIENT_DATA to ALARM" {
		t.Errorf("describe-alarm-history = %+v", hist)
	}

	var stats struct {
		Label      string
		Datapoints []json.RawMessage
	}
	cli.mustJSON(&stats, "get-metric-statistics", "--namespace", "AWS/SageMaker", "--metric-name", "Invocations",
		"--dimensions", "Name=EndpointName,Value=cli-ep", "--statistics", "Sum", "Average",
		"--start-time", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "--end-time", time.Now().UTC().Format(time.RFC3339), "--period", "60")
	if stats.Label != "Invocations" || len(stats.Datapoints) != 0 {
		t.Errorf("get-metric-statistics = %+v", stats)
	}

	var metrics struct{ Metrics []json.RawMessage }
	cli.mustJSON(&metrics, "list-metrics", "--namespace", "AWS/SageMaker")
	if len(metrics.Metrics) != 0 {
		t.Errorf("list-metrics = %+v", metrics)
	}

	// A metric of the user's own: published, then its statistics.
	at := time.Now().Add(-time.Minute).Truncate(time.Minute).UTC().Format(time.RFC3339)
	cli.mustJSON(nil, "put-metric-data", "--namespace", "MyApp", "--metric-name", "Accuracy", "--dimensions", "Model=m1",
		"--value", "0.75", "--timestamp", at)
	cli.mustJSON(nil, "put-metric-data", "--namespace", "MyApp", "--metric-name", "Accuracy", "--dimensions", "Model=m1",
		"--statistic-values", "SampleCount=3,Sum=2.4,Minimum=0.7,Maximum=0.9", "--timestamp", at)
	var own struct {
		Datapoints []struct{ SampleCount, Sum, Maximum float64 }
	}
	cli.mustJSON(&own, "get-metric-statistics", "--namespace", "MyApp", "--metric-name", "Accuracy", "--dimensions", "Name=Model,Value=m1",
		"--statistics", "SampleCount", "Sum", "Maximum", "--period", "60",
		"--start-time", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "--end-time", time.Now().UTC().Format(time.RFC3339))
	if len(own.Datapoints) != 1 || own.Datapoints[0].SampleCount != 4 || math.Abs(own.Datapoints[0].Sum-3.15) > 1e-9 || own.Datapoints[0].Maximum != 0.9 {
		t.Errorf("get-metric-statistics of a published metric = %+v, want one datapoint of 4 samples, sum 3.15, maximum 0.9", own)
	}

	// Errors reach the user with CloudWatch's codes.
	_, errOut, err := cli.run("put-metric-alarm", "--alarm-name", "cli-bad", "--namespace", "AWS/SageMaker", "--metric-name", "Invocations",
		"--statistic", "Sum", "--period", "60", "--evaluation-periods", "2", "--datapoints-to-alarm", "3", "--threshold", "1",
		"--comparison-operator", "GreaterThanThreshold")
	if err == nil || !strings.Contains(errOut, "ValidationError") || !strings.Contains(errOut, "DatapointsToAlarm") {
		t.Errorf("put-metric-alarm with more datapoints to alarm than evaluation periods: %v\n%s", err, errOut)
	}

	// Tags: those given to put-metric-alarm, and those added after.
	arn := "arn:aws:cloudwatch:us-east-1:000000000000:alarm:cli-5xx"
	cli.mustJSON(nil, "tag-resource", "--resource-arn", arn, "--tags", "Key=env,Value=prod")
	var tags struct{ Tags []struct{ Key, Value string } }
	cli.mustJSON(&tags, "list-tags-for-resource", "--resource-arn", arn)
	if len(tags.Tags) != 2 || tags.Tags[0].Key != "team" || tags.Tags[0].Value != "ml" || tags.Tags[1].Key != "env" || tags.Tags[1].Value != "prod" {
		t.Errorf("list-tags-for-resource = %+v, want team=ml and env=prod", tags)
	}
	cli.mustJSON(nil, "untag-resource", "--resource-arn", arn, "--tag-keys", "team")
	tags.Tags = nil
	cli.mustJSON(&tags, "list-tags-for-resource", "--resource-arn", arn)
	if len(tags.Tags) != 1 || tags.Tags[0].Key != "env" {
		t.Errorf("list-tags-for-resource after untag-resource = %+v, want env=prod", tags)
	}

	cli.mustJSON(nil, "delete-alarms", "--alarm-names", "cli-5xx")
	alarms = cliAlarms{}
	cli.mustJSON(&alarms, "describe-alarms")
	if len(alarms.MetricAlarms) != 0 {
		t.Errorf("describe-alarms after delete-alarms = %+v", alarms)
	}
	_, errOut, err = cli.run("delete-alarms", "--alarm-names", "cli-5xx")
	if err == nil || !strings.Contains(errOut, "ResourceNotFound") || !strings.Contains(errOut, "cli-5xx") {
		t.Errorf("delete-alarms of a deleted alarm: %v\n%s", err, errOut)
	}
}

// The CLI's signed awsQuery requests pass Kiln's SigV4 verification; a
// wrong secret is refused with awsQuery's code.
func TestAWSCLICloudWatchSigned(t *testing.T) {
	k := startCloudWatchKiln(t, true)
	cli := newCLIRunner(t, k.cwURL, cwSecret)
	cli.mustJSON(nil, "put-metric-alarm", "--alarm-name", "cli-signed", "--namespace", "AWS/SageMaker", "--metric-name", "Invocations",
		"--statistic", "Sum", "--period", "60", "--evaluation-periods", "1", "--threshold", "1", "--comparison-operator", "GreaterThanThreshold")
	var alarms cliAlarms
	cli.mustJSON(&alarms, "describe-alarms", "--alarm-names", "cli-signed")
	if len(alarms.MetricAlarms) != 1 || alarms.MetricAlarms[0].AlarmName != "cli-signed" {
		t.Fatalf("describe-alarms = %+v", alarms)
	}
	bad := newCLIRunner(t, k.cwURL, "not-the-secret-key")
	_, errOut, err := bad.run("describe-alarms")
	if err == nil || !strings.Contains(errOut, "SignatureDoesNotMatch") {
		t.Fatalf("describe-alarms with a wrong secret: %v\n%s", err, errOut)
	}
}

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// Composite alarms through the Go SDK: PutCompositeAlarm, a state that
// follows the rule, DescribeAlarms' composite lists and filters, and the
// rules CloudWatch refuses.
func TestCloudWatchCompositeAlarms(t *testing.T) {
	k := startCloudWatchKiln(t, false)
	cw := k.client()
	ctx := context.Background()
	for _, name := range []string{"c-errors", "c-latency"} {
		_, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String(name), Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocation5XXErrors"),
			Dimensions: []types.Dimension{{Name: aws.String("EndpointName"), Value: aws.String("none")}},
			Statistic:  types.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
			ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold,
			// ignore keeps a state set by hand while there is no data.
			TreatMissingData: aws.String("ignore"),
		})
		if err != nil {
			t.Fatalf("PutMetricAlarm %s: %v", name, err)
		}
	}
	put := func(name, rule string) error {
		_, err := cw.PutCompositeAlarm(ctx, &cloudwatch.PutCompositeAlarmInput{AlarmName: aws.String(name), AlarmRule: aws.String(rule),
			AlarmDescription: aws.String("both at once")})
		return err
	}
	if err := put("c-both", `ALARM("c-errors") AND ALARM(c-latency)`); err != nil {
		t.Fatalf("PutCompositeAlarm: %v", err)
	}
	if err := put("c-top", `ALARM(c-both)`); err != nil {
		t.Fatalf("PutCompositeAlarm of a composite: %v", err)
	}
	composite := func(name string) types.CompositeAlarm {
		t.Helper()
		da := must[*cloudwatch.DescribeAlarmsOutput](t, "DescribeAlarms")(cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{
			AlarmNames: []string{name}, AlarmTypes: []types.AlarmType{types.AlarmTypeCompositeAlarm}}))
		if len(da.CompositeAlarms) != 1 || len(da.MetricAlarms) != 0 {
			t.Fatalf("DescribeAlarms %s: %d composite, %d metric alarms", name, len(da.CompositeAlarms), len(da.MetricAlarms))
		}
		return da.CompositeAlarms[0]
	}
	waitState := func(name string, want types.StateValue) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for composite(name).StateValue != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v, want %s", name, composite(name), want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitState("c-both", types.StateValueOk)
	if c := composite("c-both"); aws.ToString(c.AlarmRule) != `ALARM("c-errors") AND ALARM(c-latency)` || aws.ToString(c.AlarmDescription) != "both at once" ||
		!strings.HasSuffix(aws.ToString(c.AlarmArn), ":alarm:c-both") {
		t.Errorf("composite %+v", c)
	}
	setState := func(name string, st types.StateValue) {
		t.Helper()
		if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(name), StateValue: st, StateReason: aws.String("test")}); err != nil {
			t.Fatalf("SetAlarmState %s: %v", name, err)
		}
	}
	setState("c-errors", types.StateValueAlarm)
	time.Sleep(1500 * time.Millisecond)
	if got := composite("c-both").StateValue; got != types.StateValueOk {
		t.Errorf("one child in ALARM: c-both is %s, want OK", got)
	}
	setState("c-latency", types.StateValueAlarm)
	waitState("c-both", types.StateValueAlarm)
	waitState("c-top", types.StateValueAlarm)

	// Without AlarmTypes, DescribeAlarms lists metric alarms only, as
	// CloudWatch's does; the tree filters find both kinds.
	da := must[*cloudwatch.DescribeAlarmsOutput](t, "DescribeAlarms")(cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{}))
	if len(da.MetricAlarms) != 2 || len(da.CompositeAlarms) != 0 {
		t.Errorf("DescribeAlarms: %d metric, %d composite; want 2 and 0", len(da.MetricAlarms), len(da.CompositeAlarms))
	}
	da = must[*cloudwatch.DescribeAlarmsOutput](t, "DescribeAlarms")(cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{ChildrenOfAlarmName: aws.String("c-both")}))
	if len(da.MetricAlarms) != 2 || len(da.CompositeAlarms) != 0 {
		t.Errorf("children of c-both: %d metric, %d composite; want 2 and 0", len(da.MetricAlarms), len(da.CompositeAlarms))
	}
	da = must[*cloudwatch.DescribeAlarmsOutput](t, "DescribeAlarms")(cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{ParentsOfAlarmName: aws.String("c-both")}))
	if len(da.CompositeAlarms) != 1 || aws.ToString(da.CompositeAlarms[0].AlarmName) != "c-top" {
		t.Errorf("parents of c-both: %+v, want c-top", da.CompositeAlarms)
	}

	for _, tt := range []struct{ name, rule, msg string }{
		{"c-bad", `ALARM(c-errors) AND`, "AlarmRule"},
		{"c-self", `ALARM(c-self)`, "itself"},
		{"c-both", `ALARM(c-top)`, "cycle"},
		{"c-errors", `ALARM(c-latency)`, "metric alarm"},
	} {
		if err := put(tt.name, tt.rule); apiCode(err) != "ValidationError" || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("PutCompositeAlarm %s %q: %v, want a ValidationError saying %q", tt.name, tt.rule, err, tt.msg)
		}
	}
	if _, err := cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"c-top"}}); err != nil {
		t.Fatalf("DeleteAlarms: %v", err)
	}
	da = must[*cloudwatch.DescribeAlarmsOutput](t, "DescribeAlarms")(cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmTypes: []types.AlarmType{types.AlarmTypeCompositeAlarm}}))
	if len(da.CompositeAlarms) != 1 {
		t.Errorf("after deleting c-top: %d composite alarms, want 1", len(da.CompositeAlarms))
	}
}

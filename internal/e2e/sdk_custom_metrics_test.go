package e2e

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// Metrics a client publishes with PutMetricData, through the Go SDK: their
// statistics, ListMetrics, an alarm on one that goes to ALARM, and the
// mistakes CloudWatch refuses.
func TestCloudWatchCustomMetrics(t *testing.T) {
	k := startCloudWatchKiln(t, false)
	cw := k.client()
	ctx := context.Background()
	dims := []types.Dimension{{Name: aws.String("Model"), Value: aws.String("m1")}}
	// Two minutes ago, in one minute: a value, a statistic set, and
	// values with counts.
	t0 := time.Now().Truncate(time.Minute).Add(-2 * time.Minute)
	_, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("MyApp"), MetricData: []types.MetricDatum{
		{MetricName: aws.String("Accuracy"), Dimensions: dims, Timestamp: aws.Time(t0.Add(5 * time.Second)), Value: aws.Float64(0.9)},
		{MetricName: aws.String("Accuracy"), Dimensions: dims, Timestamp: aws.Time(t0.Add(10 * time.Second)),
			StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(4), Sum: aws.Float64(3.2), Minimum: aws.Float64(0.7), Maximum: aws.Float64(0.9)}},
		{MetricName: aws.String("Accuracy"), Dimensions: dims, Timestamp: aws.Time(t0.Add(20 * time.Second)),
			Values: []float64{0.5, 0.6}, Counts: []float64{1, 3}},
		// Another set of dimensions is another metric.
		{MetricName: aws.String("Accuracy"), Timestamp: aws.Time(t0.Add(20 * time.Second)), Value: aws.Float64(0.1)},
	}})
	if err != nil {
		t.Fatalf("PutMetricData: %v", err)
	}
	st := must[*cloudwatch.GetMetricStatisticsOutput](t, "GetMetricStatistics")(cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String("MyApp"), MetricName: aws.String("Accuracy"), Dimensions: dims,
		StartTime: aws.Time(t0.Add(-time.Minute)), EndTime: aws.Time(time.Now()), Period: aws.Int32(60),
		Statistics: []types.Statistic{types.StatisticSampleCount, types.StatisticSum, types.StatisticAverage, types.StatisticMinimum, types.StatisticMaximum},
	}))
	if len(st.Datapoints) != 1 {
		t.Fatalf("GetMetricStatistics: %d datapoints, want 1: %+v", len(st.Datapoints), st.Datapoints)
	}
	p := st.Datapoints[0]
	near := func(got *float64, want float64) bool { return got != nil && math.Abs(*got-want) < 1e-9 }
	if !p.Timestamp.Equal(t0) || !near(p.SampleCount, 9) || !near(p.Sum, 6.4) || !near(p.Average, 6.4/9) || !near(p.Minimum, 0.5) || !near(p.Maximum, 0.9) {
		t.Errorf("datapoint %v: n %v sum %v avg %v min %v max %v; want %v, 9, 6.4, 0.711, 0.5, 0.9",
			p.Timestamp, aws.ToFloat64(p.SampleCount), aws.ToFloat64(p.Sum), aws.ToFloat64(p.Average), aws.ToFloat64(p.Minimum), aws.ToFloat64(p.Maximum), t0)
	}
	lm := must[*cloudwatch.ListMetricsOutput](t, "ListMetrics")(cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("MyApp")}))
	if len(lm.Metrics) != 2 {
		t.Errorf("ListMetrics MyApp: %d metrics, want 2 (with and without the Model dimension)", len(lm.Metrics))
	}

	// An alarm on the published metric, fed one low value a second.
	_, err = cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("accuracy-low"), Namespace: aws.String("MyApp"), MetricName: aws.String("Accuracy"), Dimensions: dims,
		Statistic: types.StatisticMinimum, Period: aws.Int32(1), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(0.8),
		ComparisonOperator: types.ComparisonOperatorLessThanThreshold,
	})
	if err != nil {
		t.Fatalf("PutMetricAlarm: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		must[*cloudwatch.PutMetricDataOutput](t, "PutMetricData")(cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("MyApp"),
			MetricData: []types.MetricDatum{{MetricName: aws.String("Accuracy"), Dimensions: dims, Value: aws.Float64(0.2)}}}))
		da := must[*cloudwatch.DescribeAlarmsOutput](t, "DescribeAlarms")(cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"accuracy-low"}}))
		if len(da.MetricAlarms) == 1 && da.MetricAlarms[0].StateValue == types.StateValueAlarm {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the alarm on the published metric never went to ALARM: %+v", da.MetricAlarms)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// What CloudWatch refuses, Kiln refuses, with InvalidParameterValue.
	for _, tt := range []struct {
		name string
		in   cloudwatch.PutMetricDataInput
		msg  string
	}{
		{"a reserved namespace", cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/SageMaker"),
			MetricData: []types.MetricDatum{{MetricName: aws.String("Invocations"), Value: aws.Float64(1)}}}, "reserved"},
		{"a value and values", cloudwatch.PutMetricDataInput{Namespace: aws.String("MyApp"),
			MetricData: []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1), Values: []float64{1}}}}, "exactly one"},
		{"counts without their values", cloudwatch.PutMetricDataInput{Namespace: aws.String("MyApp"),
			MetricData: []types.MetricDatum{{MetricName: aws.String("m"), Values: []float64{1, 2}, Counts: []float64{1}}}}, "Counts"},
		{"a month ago", cloudwatch.PutMetricDataInput{Namespace: aws.String("MyApp"),
			MetricData: []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1), Timestamp: aws.Time(time.Now().Add(-30 * 24 * time.Hour))}}}, "two weeks"},
		{"minimum above maximum", cloudwatch.PutMetricDataInput{Namespace: aws.String("MyApp"),
			MetricData: []types.MetricDatum{{MetricName: aws.String("m"), StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(1), Sum: aws.Float64(1), Minimum: aws.Float64(2), Maximum: aws.Float64(1)}}}}, "Minimum"},
	} {
		_, err := cw.PutMetricData(ctx, &tt.in)
		if apiCode(err) != "InvalidParameterValue" || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want InvalidParameterValue saying %q", tt.name, err, tt.msg)
		}
	}
	_, err = cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String("MyApp"), MetricName: aws.String("Accuracy"), Dimensions: dims,
		StartTime: aws.Time(t0), EndTime: aws.Time(time.Now()), Period: aws.Int32(60), ExtendedStatistics: []string{"p99"},
	})
	if err == nil || !strings.Contains(err.Error(), "percentiles") {
		t.Errorf("p99 of a published metric: %v, want an error saying Kiln keeps no percentiles of it", err)
	}
}

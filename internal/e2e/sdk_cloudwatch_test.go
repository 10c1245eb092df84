package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
	kilncw "github.com/kiln-serve/kiln/internal/api/cloudwatch"
	"github.com/kiln-serve/kiln/internal/server"
)

// cwKiln is an in-process Kiln with its CloudWatch API on an httptest
// server in front of the real service: the AWS clients talk to kilncw.API
// exactly as they would behind the SigV4 dispatcher.
type cwKiln struct {
	t   *testing.T
	svc kiln.Service
	// addr is Kiln's own listener (the gateway and native API).
	addr string
	// cwURL serves the CloudWatch API.
	cwURL string
}

// The access key the clients sign with when a test puts Kiln's SigV4
// verification in front.
const (
	cwKeyID  = "AKIDKILNTEST"
	cwSecret = "kiln-test-secret-key"
)

// startCloudWatchKiln serves the CloudWatch API of a running Kiln. With
// signed, requests pass through api.AWSHandler with credentials, as kiln
// serve mounts it when credentials are configured.
func startCloudWatchKiln(t *testing.T, signed bool) *cwKiln {
	t.Helper()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("server: %v", err)
		}
	})
	if err := srv.Run(context.Background()); err != nil {
		t.Fatalf("server stopped at start: %v", err)
	}
	var h http.Handler = &kilncw.API{Service: srv.Service()}
	if signed {
		creds, err := api.LoadCredentials("", func(k string) string {
			return map[string]string{"KILN_ACCESS_KEY_ID": cwKeyID, "KILN_SECRET_ACCESS_KEY": cwSecret}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		h = api.AWSHandler(nil, h, &api.Auth{Creds: creds})
	}
	cw := httptest.NewServer(h)
	t.Cleanup(cw.Close)
	return &cwKiln{t: t, svc: srv.Service(), addr: srv.Addr(), cwURL: cw.URL}
}

// client returns the AWS SDK's CloudWatch client (it speaks rpc-v2-cbor)
// pointed at Kiln by its endpoint URL alone.
func (k *cwKiln) client() *cloudwatch.Client { return k.clientWith(cwSecret) }

func (k *cwKiln) clientWith(secret string) *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(k.cwURL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: cwKeyID, SecretAccessKey: secret}, nil
		}),
		RetryMaxAttempts: 1,
	})
}

// demoEndpoint creates an endpoint of one demo-model instance through the
// service and waits until it is in service.
func (k *cwKiln) demoEndpoint(name string) {
	t := k.t
	t.Helper()
	ctx := context.Background()
	if _, err := k.svc.CreateModel(ctx, &kiln.Model{ModelName: name + "-m", PrimaryContainer: &kiln.ContainerDef{Image: kilnBin + " demo-model"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.svc.CreateEndpointConfig(ctx, &kiln.EndpointConfig{EndpointConfigName: name + "-c", ProductionVariants: []kiln.ProductionVariant{
		{VariantName: "AllTraffic", ModelName: name + "-m", InitialInstanceCount: 1, InstanceType: "ml.m5.large"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.svc.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: name, EndpointConfigName: name + "-c"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, name+" InService", func() bool {
		ep, err := k.svc.GetEndpoint(ctx, name)
		if err != nil {
			return false
		}
		if ep.EndpointStatus == kiln.StatusFailed {
			t.Fatalf("endpoint %s failed: %s", name, ep.FailureReason)
		}
		return ep.EndpointStatus == kiln.StatusInService && ep.Deployment == nil
	})
}

func (k *cwKiln) invoke(endpoint string, n int) {
	k.t.Helper()
	for i := 0; i < n; i++ {
		resp, err := http.Post("http://"+k.addr+"/endpoints/"+endpoint+"/invocations", "application/json", strings.NewReader(body))
		if err != nil {
			k.t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			k.t.Fatalf("invocation %d: status %d", i, resp.StatusCode)
		}
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// An alarm's whole life through the Go SDK: created in INSUFFICIENT_DATA,
// set to ALARM, its history, its deletion, and the errors on the way.
func TestCloudWatchSDKAlarms(t *testing.T) {
	k := startCloudWatchKiln(t, false)
	cw := k.client()
	ctx := context.Background()

	_, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName:          aws.String("sdk-5xx"),
		AlarmDescription:   aws.String("5XX errors on sdk-ep"),
		Namespace:          aws.String("AWS/SageMaker"),
		MetricName:         aws.String("Invocation5XXErrors"),
		Dimensions:         []types.Dimension{{Name: aws.String("EndpointName"), Value: aws.String("sdk-ep")}, {Name: aws.String("VariantName"), Value: aws.String("AllTraffic")}},
		Statistic:          types.StatisticSum,
		Period:             aws.Int32(60),
		EvaluationPeriods:  aws.Int32(3),
		DatapointsToAlarm:  aws.Int32(2),
		Threshold:          aws.Float64(1),
		ComparisonOperator: types.ComparisonOperatorGreaterThanOrEqualToThreshold,
		// ignore keeps a state set by hand while there is no data, so the
		// engine evaluating every second cannot race this test.
		TreatMissingData: aws.String("ignore"),
		Tags:             []types.Tag{{Key: aws.String("team"), Value: aws.String("ml")}},
	})
	if err != nil {
		t.Fatalf("PutMetricAlarm: %v", err)
	}
	_, err = cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("sdk-p99"), Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("ModelLatency"),
		ExtendedStatistic: aws.String("p99"), Period: aws.Int32(10), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(5e5),
		ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold, Unit: types.StandardUnitMicroseconds,
		Dimensions: []types.Dimension{{Name: aws.String("EndpointName"), Value: aws.String("sdk-ep")}},
	})
	if err != nil {
		t.Fatalf("PutMetricAlarm p99: %v", err)
	}

	out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"sdk-5xx"}})
	if err != nil {
		t.Fatalf("DescribeAlarms: %v", err)
	}
	if len(out.MetricAlarms) != 1 || len(out.CompositeAlarms) != 0 {
		t.Fatalf("DescribeAlarms = %+v", out)
	}
	a := out.MetricAlarms[0]
	if a.StateValue != types.StateValueInsufficientData || aws.ToString(a.AlarmName) != "sdk-5xx" || aws.ToString(a.AlarmDescription) != "5XX errors on sdk-ep" ||
		a.Statistic != types.StatisticSum || aws.ToInt32(a.Period) != 60 || aws.ToInt32(a.EvaluationPeriods) != 3 || aws.ToInt32(a.DatapointsToAlarm) != 2 ||
		aws.ToFloat64(a.Threshold) != 1 || a.ComparisonOperator != types.ComparisonOperatorGreaterThanOrEqualToThreshold ||
		aws.ToString(a.TreatMissingData) != "ignore" || !aws.ToBool(a.ActionsEnabled) || len(a.Dimensions) != 2 ||
		aws.ToString(a.Dimensions[1].Value) != "AllTraffic" || !strings.HasPrefix(aws.ToString(a.AlarmArn), "arn:aws:cloudwatch:") {
		t.Errorf("alarm = %+v", a)
	}
	if a.StateUpdatedTimestamp == nil || time.Since(*a.StateUpdatedTimestamp) > time.Minute || a.AlarmConfigurationUpdatedTimestamp == nil {
		t.Errorf("timestamps: updated %v, configuration %v", a.StateUpdatedTimestamp, a.AlarmConfigurationUpdatedTimestamp)
	}

	// Listing with a prefix and pages of one.
	pager := cloudwatch.NewDescribeAlarmsPaginator(cw, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("sdk-"), MaxRecords: aws.Int32(1)})
	var names []string
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("DescribeAlarms page: %v", err)
		}
		for _, a := range page.MetricAlarms {
			names = append(names, aws.ToString(a.AlarmName))
		}
	}
	if strings.Join(names, ",") != "sdk-5xx,sdk-p99" {
		t.Errorf("paged alarms = %v", names)
	}

	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{
		AlarmName: aws.String("sdk-5xx"), StateValue: types.StateValueAlarm, StateReason: aws.String("testing rollback"),
	}); err != nil {
		t.Fatalf("SetAlarmState: %v", err)
	}
	out, err = cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{StateValue: types.StateValueAlarm})
	if err != nil {
		t.Fatalf("DescribeAlarms: %v", err)
	}
	if len(out.MetricAlarms) != 1 || aws.ToString(out.MetricAlarms[0].AlarmName) != "sdk-5xx" || aws.ToString(out.MetricAlarms[0].StateReason) != "testing rollback" {
		t.Fatalf("alarms in ALARM = %+v", out.MetricAlarms)
	}

	hist, err := cw.DescribeAlarmHistory(ctx, &cloudwatch.DescribeAlarmHistoryInput{AlarmName: aws.String("sdk-5xx")})
	if err != nil {
		t.Fatalf("DescribeAlarmHistory: %v", err)
	}
	var kinds []string
	for _, h := range hist.AlarmHistoryItems {
		kinds = append(kinds, string(h.HistoryItemType)+": "+aws.ToString(h.HistorySummary))
		if h.Timestamp == nil || aws.ToString(h.AlarmName) != "sdk-5xx" || h.AlarmType != types.AlarmTypeMetricAlarm {
			t.Errorf("history item = %+v", h)
		}
	}
	if len(kinds) < 2 || kinds[0] != "StateUpdate: Alarm updated from INSUFFICIENT_DATA to ALARM" || !strings.HasPrefix(kinds[len(kinds)-1], "ConfigurationUpdate") {
		t.Errorf("history, newest first = %q", kinds)
	}
	hist, err = cw.DescribeAlarmHistory(ctx, &cloudwatch.DescribeAlarmHistoryInput{HistoryItemType: types.HistoryItemTypeConfigurationUpdate, ScanBy: types.ScanByTimestampAscending})
	if err != nil || len(hist.AlarmHistoryItems) != 2 || aws.ToString(hist.AlarmHistoryItems[0].AlarmName) != "sdk-5xx" {
		t.Errorf("configuration history of all alarms: %v %+v", err, hist)
	}

	// Errors carry CloudWatch's codes.
	_, err = cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("nope"), StateValue: types.StateValueOk, StateReason: aws.String("r")})
	var nf *types.ResourceNotFound
	if !errors.As(err, &nf) || apiCode(err) != "ResourceNotFound" {
		t.Errorf("SetAlarmState of an unknown alarm: %v (%T)", err, err)
	}
	_, err = cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("sdk-math"), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold,
		Metrics:            []types.MetricDataQuery{{Id: aws.String("e1"), Expression: aws.String("m1 * 2")}},
	})
	if apiCode(err) != "ValidationError" || !strings.Contains(err.Error(), "metric math") {
		t.Errorf("PutMetricAlarm with Metrics: %v", err)
	}
	_, err = cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("sdk-bad"), Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocations"),
		Statistic: types.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), DatapointsToAlarm: aws.Int32(2),
		Threshold: aws.Float64(1), ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold,
	})
	if apiCode(err) != "ValidationError" || !strings.Contains(err.Error(), "DatapointsToAlarm") {
		t.Errorf("PutMetricAlarm with DatapointsToAlarm > EvaluationPeriods: %v", err)
	}
	_, err = cw.PutDashboard(ctx, &cloudwatch.PutDashboardInput{DashboardName: aws.String("x"), DashboardBody: aws.String("{}")})
	if apiCode(err) != "UnknownOperationException" || !strings.Contains(err.Error(), "PutDashboard") {
		t.Errorf("PutDashboard: %v", err)
	}

	// Deleting one unknown name deletes nothing.
	_, err = cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"sdk-5xx", "nope"}})
	if apiCode(err) != "ResourceNotFound" {
		t.Errorf("DeleteAlarms with an unknown name: %v", err)
	}
	if _, err := cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"sdk-5xx", "sdk-p99"}}); err != nil {
		t.Fatalf("DeleteAlarms: %v", err)
	}
	out, err = cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{})
	if err != nil || len(out.MetricAlarms) != 0 {
		t.Fatalf("after DeleteAlarms: %v %+v", err, out)
	}
}

// Metrics of real invocations of a demo-model endpoint, read back with
// GetMetricStatistics, GetMetricData and ListMetrics, and an alarm on them
// that the engine turns to ALARM.
func TestCloudWatchSDKMetrics(t *testing.T) {
	k := startCloudWatchKiln(t, false)
	cw := k.client()
	ctx := context.Background()

	// Before any traffic: no metrics, no data points, and no errors.
	lm, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("AWS/SageMaker")})
	if err != nil || len(lm.Metrics) != 0 {
		t.Fatalf("ListMetrics before traffic: %v %+v", err, lm)
	}
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	st, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocations"),
		Dimensions: []types.Dimension{{Name: aws.String("EndpointName"), Value: aws.String("cw-ep")}},
		StartTime:  aws.Time(start), EndTime: aws.Time(time.Now().Add(time.Minute)), Period: aws.Int32(60),
		Statistics: []types.Statistic{types.StatisticSum},
	})
	if err != nil || len(st.Datapoints) != 0 {
		t.Fatalf("GetMetricStatistics before traffic: %v %+v", err, st)
	}

	k.demoEndpoint("cw-ep")
	_, err = cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("cw-traffic"), Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocations"),
		Dimensions: []types.Dimension{{Name: aws.String("EndpointName"), Value: aws.String("cw-ep")}},
		Statistic:  types.StatisticSum, Period: aws.Int32(1), EvaluationPeriods: aws.Int32(30), DatapointsToAlarm: aws.Int32(1),
		Threshold: aws.Float64(0), ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold, TreatMissingData: aws.String("notBreaching"),
	})
	if err != nil {
		t.Fatalf("PutMetricAlarm: %v", err)
	}
	const n = 25
	k.invoke("cw-ep", n)

	dims := []types.Dimension{{Name: aws.String("EndpointName"), Value: aws.String("cw-ep")}}
	var sum, count float64
	waitFor(t, 10*time.Second, "GetMetricStatistics to count every invocation", func() bool {
		st, err = cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
			Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocations"), Dimensions: dims,
			StartTime: aws.Time(start), EndTime: aws.Time(time.Now().Add(time.Minute)), Period: aws.Int32(3600),
			Statistics: []types.Statistic{types.StatisticSum, types.StatisticSampleCount},
		})
		if err != nil {
			t.Fatalf("GetMetricStatistics: %v", err)
		}
		sum, count = 0, 0
		for _, dp := range st.Datapoints {
			sum += aws.ToFloat64(dp.Sum)
			count += aws.ToFloat64(dp.SampleCount)
			if dp.Unit != types.StandardUnitNone || dp.Timestamp == nil || dp.Average != nil {
				t.Fatalf("datapoint = %+v", dp)
			}
		}
		return sum == n && count == n
	})
	if aws.ToString(st.Label) != "Invocations" {
		t.Errorf("Label = %q", aws.ToString(st.Label))
	}

	lat, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("ModelLatency"), Dimensions: dims,
		StartTime: aws.Time(start), EndTime: aws.Time(time.Now().Add(time.Minute)), Period: aws.Int32(3600),
		ExtendedStatistics: []string{"p50", "p99"},
	})
	if err != nil || len(lat.Datapoints) == 0 {
		t.Fatalf("GetMetricStatistics p99: %v %+v", err, lat)
	}
	dp := lat.Datapoints[0]
	if dp.Unit != types.StandardUnitMicroseconds || dp.ExtendedStatistics["p99"] <= 0 || dp.ExtendedStatistics["p50"] > dp.ExtendedStatistics["p99"] {
		t.Errorf("latency datapoint = %+v", dp)
	}

	md, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []types.MetricDataQuery{
			{Id: aws.String("inv"), MetricStat: &types.MetricStat{Metric: &types.Metric{Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocations"), Dimensions: dims}, Period: aws.Int32(1), Stat: aws.String("Sum")}},
			{Id: aws.String("p99"), Label: aws.String("latency p99"), MetricStat: &types.MetricStat{Metric: &types.Metric{Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("ModelLatency"), Dimensions: dims}, Period: aws.Int32(60), Stat: aws.String("p99")}},
		},
	})
	if err != nil {
		t.Fatalf("GetMetricData: %v", err)
	}
	if len(md.MetricDataResults) != 2 {
		t.Fatalf("MetricDataResults = %+v", md.MetricDataResults)
	}
	inv := md.MetricDataResults[0]
	total := 0.0
	for _, v := range inv.Values {
		total += v
	}
	if aws.ToString(inv.Id) != "inv" || aws.ToString(inv.Label) != "Invocations" || inv.StatusCode != types.StatusCodeComplete || total != n || len(inv.Timestamps) != len(inv.Values) {
		t.Errorf("inv result = %+v", inv)
	}
	for i := 1; i < len(inv.Timestamps); i++ {
		if !inv.Timestamps[i].Before(inv.Timestamps[i-1]) {
			t.Errorf("timestamps are not newest first: %v", inv.Timestamps)
			break
		}
	}
	if aws.ToString(md.MetricDataResults[1].Label) != "latency p99" || len(md.MetricDataResults[1].Values) == 0 {
		t.Errorf("p99 result = %+v", md.MetricDataResults[1])
	}

	lm, err = cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocations"),
		Dimensions: []types.DimensionFilter{{Name: aws.String("EndpointName"), Value: aws.String("cw-ep")}}})
	if err != nil {
		t.Fatalf("ListMetrics: %v", err)
	}
	var sets []string
	for _, m := range lm.Metrics {
		var ds []string
		for _, d := range m.Dimensions {
			ds = append(ds, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
		}
		sets = append(sets, aws.ToString(m.MetricName)+"{"+strings.Join(ds, ",")+"}")
	}
	if len(sets) == 0 || !containsString(sets, "Invocations{EndpointName=cw-ep}") || !containsString(sets, "Invocations{EndpointName=cw-ep,VariantName=AllTraffic}") {
		t.Errorf("ListMetrics = %v", sets)
	}

	// The engine, evaluating every second, sees the traffic.
	waitFor(t, 15*time.Second, "cw-traffic in ALARM", func() bool {
		out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"cw-traffic"}})
		if err != nil {
			t.Fatalf("DescribeAlarms: %v", err)
		}
		return len(out.MetricAlarms) == 1 && out.MetricAlarms[0].StateValue == types.StateValueAlarm
	})
}

// Behind SigV4 verification, as with credentials configured: the SDK's
// signed requests reach the CloudWatch API with their bodies intact, and a
// wrong secret is refused with the query-compatible code.
func TestCloudWatchSDKSigned(t *testing.T) {
	k := startCloudWatchKiln(t, true)
	ctx := context.Background()
	cw := k.client()
	_, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("signed"), Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocations"),
		Statistic: types.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold,
	})
	if err != nil {
		t.Fatalf("signed PutMetricAlarm: %v", err)
	}
	out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"signed"}})
	if err != nil || len(out.MetricAlarms) != 1 {
		t.Fatalf("signed DescribeAlarms: %v %+v", err, out)
	}
	_, err = k.clientWith("not-the-secret-key").DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{})
	if code := apiCode(err); code != "SignatureDoesNotMatch" {
		t.Fatalf("DescribeAlarms with a wrong secret: %v (code %q)", err, code)
	}
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

package cloudwatch

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
)

// memAlarms is an in-memory kiln.Service with CloudWatch's alarm rules (the
// domain's own validation), for protocol tests that need no server. The
// end-to-end tests drive the real service with the AWS SDK and CLI.
type memAlarms struct {
	kiln.Service // methods the CloudWatch API never calls

	mu      sync.Mutex
	now     time.Time
	alarms  map[string]kiln.Alarm
	history []kiln.AlarmHistoryItem
	// points answers GetMetricStatistics by statistic.
	points  map[string][]kiln.Datapoint
	queries []kiln.MetricQuery
	metrics []kiln.Metric
}

func newMemAlarms() *memAlarms {
	return &memAlarms{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), alarms: map[string]kiln.Alarm{}, points: map[string][]kiln.Datapoint{}}
}

// changeTags applies f to the tags of the alarm an ARN names.
func (m *memAlarms) changeTags(arn string, f func([]kiln.Tag) ([]kiln.Tag, error)) ([]kiln.Tag, error) {
	kind, _, _, name, err := kiln.ParseARN(arn)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.alarms[name]
	if kind != kiln.KindAlarm || !ok {
		return nil, kiln.Errorf(kiln.ENOTFOUND, "%s", kiln.ResourceNotFound(arn))
	}
	if f == nil {
		return a.Tags, nil
	}
	if a.Tags, err = f(a.Tags); err != nil {
		return nil, err
	}
	m.alarms[name] = a
	return a.Tags, nil
}

func (m *memAlarms) PutMetricData(_ context.Context, namespace string, data []kiln.MetricDatum) error {
	return kiln.ValidateMetricData(namespace, data, m.now)
}

func (m *memAlarms) ListTags(_ context.Context, arn string) ([]kiln.Tag, error) {
	return m.changeTags(arn, nil)
}

func (m *memAlarms) AddTags(_ context.Context, arn string, tags []kiln.Tag) ([]kiln.Tag, error) {
	return m.changeTags(arn, func(old []kiln.Tag) ([]kiln.Tag, error) { return kiln.AddTags(old, tags) })
}

func (m *memAlarms) DeleteTags(_ context.Context, arn string, keys []string) error {
	_, err := m.changeTags(arn, func(old []kiln.Tag) ([]kiln.Tag, error) { return kiln.RemoveTags(old, keys) })
	return err
}

func (m *memAlarms) PutAlarm(_ context.Context, a *kiln.Alarm) (*kiln.Alarm, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(time.Second)
	a.AlarmArn = "arn:aws:cloudwatch:us-east-1:000000000000:alarm:" + a.AlarmName
	a.AlarmConfigurationUpdatedTimestamp = m.now
	if old, ok := m.alarms[a.AlarmName]; ok {
		a.AlarmState = old.AlarmState
	} else {
		a.AlarmState = kiln.AlarmState{StateValue: kiln.StateInsufficientData, StateReason: "Unchecked: Initial alarm creation", StateUpdatedTimestamp: m.now, StateTransitionedTimestamp: m.now}
	}
	m.alarms[a.AlarmName] = *a
	m.history = append(m.history, kiln.AlarmHistoryItem{AlarmName: a.AlarmName, Timestamp: m.now, HistoryItemType: "ConfigurationUpdate", HistorySummary: "Alarm \"" + a.AlarmName + "\" created"})
	return a, nil
}

func (m *memAlarms) GetAlarm(_ context.Context, name string) (*kiln.Alarm, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.alarms[name]
	if !ok {
		return nil, kiln.Errorf(kiln.ENOTFOUND, "Could not find alarm %q.", name)
	}
	return &a, nil
}

func (m *memAlarms) ListAlarms(context.Context) ([]kiln.Alarm, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []kiln.Alarm
	for _, a := range m.alarms {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b kiln.Alarm) int { return strings.Compare(a.AlarmName, b.AlarmName) })
	return out, nil
}

func (m *memAlarms) DeleteAlarms(_ context.Context, names []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range names {
		if _, ok := m.alarms[n]; !ok {
			return kiln.Errorf(kiln.ENOTFOUND, "Could not find alarm %q.", n)
		}
	}
	for _, n := range names {
		delete(m.alarms, n)
	}
	return nil
}

func (m *memAlarms) SetAlarmState(_ context.Context, name, state, reason, data string) error {
	switch state {
	case kiln.StateOK, kiln.StateAlarm, kiln.StateInsufficientData:
	default:
		return kiln.Errorf(kiln.EINVALID, "StateValue %q is not one of OK, ALARM, INSUFFICIENT_DATA.", state)
	}
	if data != "" && !json.Valid([]byte(data)) {
		return kiln.Errorf(kiln.EINVALID, "StateReasonData must be JSON.")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.alarms[name]
	if !ok {
		return kiln.Errorf(kiln.ENOTFOUND, "Could not find alarm %q.", name)
	}
	m.now = m.now.Add(time.Second)
	old := a.StateValue
	a.AlarmState = kiln.AlarmState{StateValue: state, StateReason: reason, StateReasonData: data, StateUpdatedTimestamp: m.now, StateTransitionedTimestamp: m.now}
	m.alarms[name] = a
	m.history = append(m.history, kiln.AlarmHistoryItem{AlarmName: name, Timestamp: m.now, HistoryItemType: "StateUpdate", HistorySummary: "Alarm updated from " + old + " to " + state})
	return nil
}

func (m *memAlarms) AlarmHistory(_ context.Context, name string) ([]kiln.AlarmHistoryItem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []kiln.AlarmHistoryItem
	for _, h := range m.history {
		if name == "" || h.AlarmName == name {
			out = append(out, h)
		}
	}
	return out, nil
}

func (m *memAlarms) GetMetricStatistics(_ context.Context, q kiln.MetricQuery) ([]kiln.Datapoint, error) {
	if _, ok := kiln.ParsePercentile(q.Statistic); !ok && !kiln.ValidStatistic(q.Statistic) {
		return nil, kiln.Errorf(kiln.EINVALID, "bad statistic %q", q.Statistic)
	}
	if q.Period < 1 || !q.EndTime.After(q.StartTime) {
		return nil, kiln.Errorf(kiln.EINVALID, "bad period or range")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queries = append(m.queries, q)
	return slices.Clone(m.points[q.Statistic]), nil
}

func (m *memAlarms) ListMetrics(_ context.Context, namespace, metricName string, dims []kiln.Dimension) ([]kiln.Metric, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []kiln.Metric
	for _, x := range m.metrics {
		if (namespace == "" || x.Namespace == namespace) && (metricName == "" || x.MetricName == metricName) {
			out = append(out, x)
		}
	}
	return out, nil
}

func newCW(t *testing.T) (*memAlarms, *httptest.Server) {
	t.Helper()
	svc := newMemAlarms()
	srv := httptest.NewServer(&API{Service: svc})
	t.Cleanup(srv.Close)
	return svc, srv
}

// --- rpc-v2-cbor ---

func cborCall(t *testing.T, base, op string, in cbor.Map) (int, http.Header, map[string]any) {
	t.Helper()
	var body []byte
	if in != nil {
		body = cbor.Encode(in)
	}
	req, _ := http.NewRequest("POST", base+cborPrefix+op, bytes.NewReader(body))
	req.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
	req.Header.Set("Content-Type", "application/cbor")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if got := resp.Header.Get("Smithy-Protocol"); got != "rpc-v2-cbor" {
		t.Errorf("%s: Smithy-Protocol = %q, want rpc-v2-cbor", op, got)
	}
	if resp.Header.Get("X-Amzn-RequestId") == "" {
		t.Errorf("%s: no X-Amzn-RequestId", op)
	}
	v, err := cbor.Decode(raw)
	if err != nil {
		t.Fatalf("%s: response is not CBOR: %v (% x)", op, err, raw)
	}
	tree, err := fromCBOR(v)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := tree.(map[string]any)
	return resp.StatusCode, resp.Header, m
}

func TestCloudWatchCBOR(t *testing.T) {
	_, srv := newCW(t)
	str := func(s string) cbor.String { return cbor.String(s) }
	status, _, out := cborCall(t, srv.URL, "PutMetricAlarm", cbor.Map{
		"AlarmName":          str("cbor-5xx"),
		"AlarmDescription":   str("errors on demo"),
		"Namespace":          str("AWS/SageMaker"),
		"MetricName":         str("Invocation5XXErrors"),
		"Dimensions":         cbor.List{cbor.Map{"Name": str("EndpointName"), "Value": str("demo")}, cbor.Map{"Name": str("VariantName"), "Value": str("AllTraffic")}},
		"Statistic":          str("Sum"),
		"Period":             cbor.Uint(60),
		"EvaluationPeriods":  cbor.Uint(3),
		"DatapointsToAlarm":  cbor.Uint(2),
		"Threshold":          cbor.Float64(1.5),
		"ComparisonOperator": str("GreaterThanOrEqualToThreshold"),
		"TreatMissingData":   str("notBreaching"),
		"ActionsEnabled":     cbor.Bool(false),
		"Tags":               cbor.List{cbor.Map{"Key": str("team"), "Value": str("ml")}},
	})
	if status != 200 {
		t.Fatalf("PutMetricAlarm: %d %v", status, out)
	}

	status, _, out = cborCall(t, srv.URL, "DescribeAlarms", cbor.Map{"AlarmNames": cbor.List{str("cbor-5xx")}})
	if status != 200 {
		t.Fatalf("DescribeAlarms: %d %v", status, out)
	}
	alarms := out["MetricAlarms"].([]any)
	if len(alarms) != 1 {
		t.Fatalf("MetricAlarms = %v", alarms)
	}
	a := alarms[0].(map[string]any)
	want := map[string]any{
		"AlarmName": "cbor-5xx", "AlarmDescription": "errors on demo", "Namespace": "AWS/SageMaker",
		"MetricName": "Invocation5XXErrors", "Statistic": "Sum", "Period": cbor.Uint(60),
		"EvaluationPeriods": cbor.Uint(3), "DatapointsToAlarm": cbor.Uint(2), "Threshold": cbor.Float64(1.5),
		"ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
		"StateValue": "INSUFFICIENT_DATA", "ActionsEnabled": false,
		"AlarmArn": "arn:aws:cloudwatch:us-east-1:000000000000:alarm:cbor-5xx",
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %#v, want %#v", k, a[k], v)
		}
	}
	for _, k := range []string{"StateUpdatedTimestamp", "StateTransitionedTimestamp", "AlarmConfigurationUpdatedTimestamp"} {
		if ts, ok := a[k].(time.Time); !ok || ts.IsZero() {
			t.Errorf("%s = %#v, want a CBOR tag-1 timestamp", k, a[k])
		}
	}
	if d := a["Dimensions"].([]any); len(d) != 2 || d[1].(map[string]any)["Value"] != "AllTraffic" {
		t.Errorf("Dimensions = %v", d)
	}
	if _, ok := out["CompositeAlarms"].([]any); !ok {
		t.Errorf("CompositeAlarms missing: %v", out)
	}

	// An empty body is an empty input: every alarm.
	status, _, out = cborCall(t, srv.URL, "DescribeAlarms", nil)
	if status != 200 || len(out["MetricAlarms"].([]any)) != 1 {
		t.Fatalf("DescribeAlarms with no body: %d %v", status, out)
	}

	status, _, out = cborCall(t, srv.URL, "SetAlarmState", cbor.Map{"AlarmName": str("cbor-5xx"), "StateValue": str("ALARM"), "StateReason": str("testing")})
	if status != 200 {
		t.Fatalf("SetAlarmState: %d %v", status, out)
	}
	_, _, out = cborCall(t, srv.URL, "DescribeAlarms", cbor.Map{"StateValue": str("ALARM")})
	if l := out["MetricAlarms"].([]any); len(l) != 1 || l[0].(map[string]any)["StateReason"] != "testing" {
		t.Fatalf("DescribeAlarms StateValue=ALARM: %v", out)
	}

	status, _, out = cborCall(t, srv.URL, "DescribeAlarmHistory", cbor.Map{"AlarmName": str("cbor-5xx"), "HistoryItemType": str("StateUpdate")})
	if status != 200 {
		t.Fatalf("DescribeAlarmHistory: %d %v", status, out)
	}
	if items := out["AlarmHistoryItems"].([]any); len(items) != 1 || items[0].(map[string]any)["HistorySummary"] != "Alarm updated from INSUFFICIENT_DATA to ALARM" {
		t.Fatalf("AlarmHistoryItems = %v", items)
	}

	// Errors: the query-compatible code in X-Amzn-Query-Error, the shape in
	// __type.
	status, h, out := cborCall(t, srv.URL, "DeleteAlarms", cbor.Map{"AlarmNames": cbor.List{str("nope")}})
	if status != 404 || h.Get("X-Amzn-Query-Error") != "ResourceNotFound;Sender" || out["__type"] != shapeNS+"ResourceNotFound" || !strings.Contains(out["message"].(string), "nope") {
		t.Fatalf("DeleteAlarms of an unknown alarm: %d %v %v", status, h, out)
	}
	status, h, out = cborCall(t, srv.URL, "PutMetricAlarm", cbor.Map{"AlarmName": str("x"), "Period": str("sixty")})
	if status != 400 || h.Get("X-Amzn-Query-Error") != "ValidationError;Sender" || !strings.Contains(out["message"].(string), "Period") {
		t.Fatalf("PutMetricAlarm with a string Period: %d %v %v", status, h, out)
	}
	status, _, out = cborCall(t, srv.URL, "PutDashboard", cbor.Map{})
	if status != 404 || out["__type"] != "UnknownOperationException" || !strings.Contains(out["message"].(string), "PutDashboard") {
		t.Fatalf("unknown operation: %d %v", status, out)
	}

	status, _, out = cborCall(t, srv.URL, "DeleteAlarms", cbor.Map{"AlarmNames": cbor.List{str("cbor-5xx")}})
	if status != 200 {
		t.Fatalf("DeleteAlarms: %d %v", status, out)
	}
	_, _, out = cborCall(t, srv.URL, "DescribeAlarms", cbor.Map{})
	if l := out["MetricAlarms"].([]any); len(l) != 0 {
		t.Fatalf("after DeleteAlarms: %v", l)
	}
}

// --- awsJson1_0 ---

func jsonCall(t *testing.T, base, op, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/", strings.NewReader(body))
	req.Header.Set("X-Amz-Target", targetPrefix+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.0" {
		t.Errorf("%s: Content-Type = %q", op, ct)
	}
	var out map[string]any
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%s: response is not JSON: %v", op, err)
	}
	return resp.StatusCode, resp.Header, out
}

func TestCloudWatchJSON(t *testing.T) {
	_, srv := newCW(t)
	status, _, out := jsonCall(t, srv.URL, "PutMetricAlarm", `{"AlarmName":"json-p99","Namespace":"AWS/SageMaker","MetricName":"ModelLatency",
		"Dimensions":[{"Name":"EndpointName","Value":"demo"}],"ExtendedStatistic":"p99","Period":10,"EvaluationPeriods":2,
		"Threshold":250000,"ComparisonOperator":"GreaterThanThreshold","EvaluateLowSampleCountPercentile":"ignore","Unit":"Microseconds",
		"AlarmActions":[],"OKActions":[]}`)
	if status != 200 {
		t.Fatalf("PutMetricAlarm: %d %v", status, out)
	}
	status, _, out = jsonCall(t, srv.URL, "DescribeAlarms", `{"AlarmNamePrefix":"json-","AlarmTypes":["MetricAlarm"]}`)
	if status != 200 {
		t.Fatalf("DescribeAlarms: %d %v", status, out)
	}
	a := out["MetricAlarms"].([]any)[0].(map[string]any)
	if a["ExtendedStatistic"] != "p99" || a["Unit"] != "Microseconds" || a["Threshold"] != json.Number("250000") || a["Period"] != json.Number("10") || a["EvaluateLowSampleCountPercentile"] != "ignore" {
		t.Errorf("alarm = %v", a)
	}
	if _, ok := a["StateUpdatedTimestamp"].(json.Number); !ok {
		t.Errorf("StateUpdatedTimestamp = %#v, want epoch seconds", a["StateUpdatedTimestamp"])
	}
	if _, ok := a["Statistic"]; ok {
		t.Errorf("Statistic present for an ExtendedStatistic alarm: %v", a)
	}

	// Errors carry both the query code and the shape.
	status, h, out := jsonCall(t, srv.URL, "SetAlarmState", `{"AlarmName":"nope","StateValue":"OK","StateReason":"r"}`)
	if status != 404 || h.Get("X-Amzn-Query-Error") != "ResourceNotFound;Sender" || out["__type"] != shapeNS+"ResourceNotFound" {
		t.Fatalf("SetAlarmState of an unknown alarm: %d %v %v", status, h, out)
	}
	status, _, out = jsonCall(t, srv.URL, "PutMetricAlarm", `{"AlarmName":"m","Metrics":[{"Id":"e1","Expression":"m1*2"}],"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}`)
	if status != 400 || !strings.Contains(out["message"].(string), "metric math") {
		t.Fatalf("PutMetricAlarm with Metrics: %d %v", status, out)
	}
	status, _, out = jsonCall(t, srv.URL, "PutMetricAlarm", `{"AlarmName":"m","AlarmActions":["arn:aws:sns:us-east-1:000000000000:t"],"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}`)
	if status != 400 || !strings.Contains(out["message"].(string), "AlarmActions") {
		t.Fatalf("PutMetricAlarm with AlarmActions: %d %v", status, out)
	}
	status, _, out = jsonCall(t, srv.URL, "DescribeAlarms", `{"MaxRecords":0}`)
	if status != 400 || out["__type"] != shapeNS+"ValidationException" {
		t.Fatalf("MaxRecords 0: %d %v", status, out)
	}
	status, _, out = jsonCall(t, srv.URL, "DescribeAlarms", `[1,2]`)
	if status != 400 {
		t.Fatalf("array body: %d %v", status, out)
	}
	status, h, out = jsonCall(t, srv.URL, "Frobnicate", `{}`)
	if status != 400 || out["__type"] != "UnknownOperationException" || h.Get("X-Amzn-Query-Error") != "" {
		t.Fatalf("unknown operation: %d %v %v", status, h, out)
	}
}

func TestCloudWatchPaging(t *testing.T) {
	_, srv := newCW(t)
	for _, n := range []string{"a1", "a2", "a3", "b1", "a4"} {
		status, _, out := jsonCall(t, srv.URL, "PutMetricAlarm", `{"AlarmName":"`+n+`","Namespace":"AWS/SageMaker","MetricName":"Invocations","Statistic":"Sum","Period":60,"EvaluationPeriods":1,"Threshold":0,"ComparisonOperator":"GreaterThanThreshold"}`)
		if status != 200 {
			t.Fatal(out)
		}
	}
	var names []string
	token := ""
	for pages := 0; ; pages++ {
		body := `{"AlarmNamePrefix":"a","MaxRecords":3}`
		if token != "" {
			body = `{"AlarmNamePrefix":"a","MaxRecords":3,"NextToken":"` + token + `"}`
		}
		status, _, out := jsonCall(t, srv.URL, "DescribeAlarms", body)
		if status != 200 || pages > 3 {
			t.Fatalf("page %d: %d %v", pages, status, out)
		}
		for _, a := range out["MetricAlarms"].([]any) {
			names = append(names, a.(map[string]any)["AlarmName"].(string))
		}
		tok, _ := out["NextToken"].(string)
		if tok == "" {
			break
		}
		token = tok
	}
	if !slices.Equal(names, []string{"a1", "a2", "a3", "a4"}) {
		t.Fatalf("paged names = %v", names)
	}
	status, _, out := jsonCall(t, srv.URL, "DescribeAlarms", `{"NextToken":"garbage!"}`)
	if status != 400 || out["__type"] != shapeNS+"InvalidNextToken" {
		t.Fatalf("bad token: %d %v", status, out)
	}

	// History, newest first by default, two at a time.
	var summaries []string
	token = ""
	for {
		body := `{"MaxRecords":2,"HistoryItemType":"ConfigurationUpdate"}`
		if token != "" {
			body = `{"MaxRecords":2,"HistoryItemType":"ConfigurationUpdate","NextToken":"` + token + `"}`
		}
		_, _, out := jsonCall(t, srv.URL, "DescribeAlarmHistory", body)
		for _, h := range out["AlarmHistoryItems"].([]any) {
			summaries = append(summaries, h.(map[string]any)["AlarmName"].(string))
		}
		tok, _ := out["NextToken"].(string)
		if tok == "" {
			break
		}
		token = tok
	}
	if !slices.Equal(summaries, []string{"a4", "b1", "a3", "a2", "a1"}) {
		t.Fatalf("history = %v", summaries)
	}
}

// --- awsQuery ---

func queryCall(t *testing.T, base string, form url.Values) (int, []byte) {
	t.Helper()
	form.Set("Version", apiVersion)
	req, _ := http.NewRequest("POST", base+"/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if !IsRequest(req) {
		t.Fatalf("IsRequest is false for an awsQuery request")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "text/xml" {
		t.Errorf("Content-Type = %q", ct)
	}
	return resp.StatusCode, b
}

type queryError struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Error   struct {
		Type, Code, Message string
	}
	RequestID string `xml:"RequestId"`
}

func TestCloudWatchQuery(t *testing.T) {
	svc, srv := newCW(t)
	status, body := queryCall(t, srv.URL, url.Values{
		"Action": {"PutMetricAlarm"}, "AlarmName": {"q-5xx"}, "Namespace": {"AWS/SageMaker"}, "MetricName": {"Invocation5XXErrors"},
		"Dimensions.member.1.Name": {"EndpointName"}, "Dimensions.member.1.Value": {"demo"},
		"Dimensions.member.2.Name": {"VariantName"}, "Dimensions.member.2.Value": {"AllTraffic"},
		"Statistic": {"Average"}, "Period": {"30"}, "EvaluationPeriods": {"2"}, "Threshold": {"0.05"},
		"ComparisonOperator": {"GreaterThanThreshold"}, "ActionsEnabled": {"true"}, "AlarmActions": {""},
		"Tags.member.1.Key": {"team"}, "Tags.member.1.Value": {"ml & ops"},
	})
	if status != 200 || !bytes.Contains(body, []byte("<PutMetricAlarmResponse xmlns=\""+xmlns+"\">")) || !bytes.Contains(body, []byte("<RequestId>")) {
		t.Fatalf("PutMetricAlarm: %d %s", status, body)
	}
	if a := svc.alarms["q-5xx"]; len(a.Dimensions) != 2 || a.Dimensions[1].Value != "AllTraffic" || a.Threshold != 0.05 || a.Tags[0].Value != "ml & ops" || a.ActionsEnabled == nil || !*a.ActionsEnabled {
		t.Fatalf("stored alarm = %+v", a)
	}

	status, body = queryCall(t, srv.URL, url.Values{"Action": {"DescribeAlarms"}, "AlarmNames.member.1": {"q-5xx"}, "MaxRecords": {"10"}})
	var described struct {
		Result struct {
			MetricAlarms []struct {
				AlarmName, StateValue, Statistic, ComparisonOperator, AlarmArn string
				Period, EvaluationPeriods                                      int
				Threshold                                                      float64
				ActionsEnabled                                                 bool
				StateUpdatedTimestamp                                          time.Time
				Dimensions                                                     []kiln.Dimension `xml:"Dimensions>member"`
			} `xml:"MetricAlarms>member"`
		} `xml:"DescribeAlarmsResult"`
	}
	if err := xml.Unmarshal(body, &described); err != nil || status != 200 {
		t.Fatalf("DescribeAlarms: %d %v %s", status, err, body)
	}
	if len(described.Result.MetricAlarms) != 1 {
		t.Fatalf("DescribeAlarms: %s", body)
	}
	a := described.Result.MetricAlarms[0]
	if a.AlarmName != "q-5xx" || a.StateValue != "INSUFFICIENT_DATA" || a.Period != 30 || a.Threshold != 0.05 || !a.ActionsEnabled ||
		a.StateUpdatedTimestamp.IsZero() || len(a.Dimensions) != 2 || a.Dimensions[0] != (kiln.Dimension{Name: "EndpointName", Value: "demo"}) {
		t.Fatalf("alarm = %+v\n%s", a, body)
	}

	status, body = queryCall(t, srv.URL, url.Values{"Action": {"SetAlarmState"}, "AlarmName": {"q-5xx"}, "StateValue": {"ALARM"}, "StateReason": {"by hand"}, "StateReasonData": {`{"version":"1.0"}`}})
	if status != 200 || !bytes.Contains(body, []byte("<SetAlarmStateResponse")) {
		t.Fatalf("SetAlarmState: %d %s", status, body)
	}
	status, body = queryCall(t, srv.URL, url.Values{"Action": {"DescribeAlarmHistory"}, "AlarmName": {"q-5xx"}, "ScanBy": {"TimestampAscending"},
		"StartDate": {"2000-01-01T00:00:00Z"}, "EndDate": {"2100-01-01T00:00:00.000Z"}})
	var hist struct {
		Items []struct{ AlarmName, HistoryItemType, HistorySummary string } `xml:"DescribeAlarmHistoryResult>AlarmHistoryItems>member"`
	}
	if err := xml.Unmarshal(body, &hist); err != nil || status != 200 || len(hist.Items) != 2 || hist.Items[0].HistoryItemType != "ConfigurationUpdate" || hist.Items[1].HistoryItemType != "StateUpdate" {
		t.Fatalf("DescribeAlarmHistory: %d %v %s", status, err, body)
	}

	// Errors as awsQuery writes them.
	for _, c := range []struct {
		form   url.Values
		status int
		code   string
		msg    string
	}{
		{url.Values{"Action": {"DeleteAlarms"}, "AlarmNames.member.1": {"nope"}}, 404, "ResourceNotFound", "nope"},
		{url.Values{"Action": {"DeleteAlarms"}, "AlarmNames": {""}}, 400, "ValidationError", "AlarmNames"},
		{url.Values{"Action": {"PutDashboard"}}, 400, "InvalidAction", "PutDashboard"},
		{url.Values{}, 400, "MissingAction", "Action"},
		{url.Values{"Action": {"DescribeAlarms"}, "MaxRecords": {"many"}}, 400, "ValidationError", "MaxRecords"},
		{url.Values{"Action": {"DescribeAlarms"}, "AlarmNames.member.x": {"a"}}, 400, "ValidationError", "list index"},
		{url.Values{"Action": {"DescribeAlarms"}, "StateValue": {"RED"}}, 400, "ValidationError", "StateValue"},
		{url.Values{"Action": {"GetMetricStatistics"}, "Namespace": {"AWS/SageMaker"}, "MetricName": {"Invocations"}, "Period": {"60"},
			"StartTime": {"2025-01-01T00:00:00Z"}, "EndTime": {"2025-01-01T01:00:00Z"}}, 400, "MissingParameter", "Statistics"},
		{url.Values{"Action": {"GetMetricStatistics"}, "Namespace": {"AWS/SageMaker"}, "MetricName": {"Invocations"}, "Period": {"60"},
			"StartTime": {"2025-01-01T02:00:00Z"}, "EndTime": {"2025-01-01T01:00:00Z"}, "Statistics.member.1": {"Sum"}}, 400, "InvalidParameterValue", "StartTime"},
		{url.Values{"Action": {"GetMetricStatistics"}, "Namespace": {"AWS/SageMaker"}, "MetricName": {"Invocations"}, "Period": {"60"},
			"StartTime": {"yesterday"}, "EndTime": {"2025-01-01T01:00:00Z"}, "Statistics.member.1": {"Sum"}}, 400, "ValidationError", "StartTime"},
	} {
		status, body := queryCall(t, srv.URL, c.form)
		var e queryError
		if err := xml.Unmarshal(body, &e); err != nil {
			t.Fatalf("%v: %v %s", c.form, err, body)
		}
		if status != c.status || e.Error.Code != c.code || e.Error.Type != "Sender" || !strings.Contains(e.Error.Message, c.msg) || e.RequestID == "" {
			t.Errorf("%v: %d %+v, want %d %s mentioning %q", c.form, status, e, c.status, c.code, c.msg)
		}
	}
}

func TestCloudWatchMetricReads(t *testing.T) {
	svc, srv := newCW(t)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	svc.points["Sum"] = []kiln.Datapoint{{Timestamp: t0, Value: 10, SampleCount: 10}, {Timestamp: t1, Value: 4, SampleCount: 4}}
	svc.points["SampleCount"] = []kiln.Datapoint{{Timestamp: t0, Value: 10, SampleCount: 10}, {Timestamp: t1, Value: 4, SampleCount: 4}}
	svc.points["p99"] = []kiln.Datapoint{{Timestamp: t1, Value: 1234.5, SampleCount: 4}}
	svc.metrics = []kiln.Metric{{Namespace: "AWS/SageMaker", MetricName: "Invocations", Dimensions: []kiln.Dimension{{Name: "EndpointName", Value: "demo"}}}}

	status, _, out := jsonCall(t, srv.URL, "GetMetricStatistics", `{"Namespace":"AWS/SageMaker","MetricName":"Invocations",
		"Dimensions":[{"Name":"EndpointName","Value":"demo"}],"StartTime":1740830000,"EndTime":1740840000.5,"Period":60,
		"Statistics":["Sum","SampleCount"]}`)
	if status != 200 {
		t.Fatalf("GetMetricStatistics: %d %v", status, out)
	}
	dps := out["Datapoints"].([]any)
	if len(dps) != 2 || out["Label"] != "Invocations" {
		t.Fatalf("Datapoints = %v", out)
	}
	first := dps[0].(map[string]any)
	if first["Sum"] != json.Number("10") || first["SampleCount"] != json.Number("10") || first["Unit"] != "None" || first["Timestamp"] != json.Number("1740830400") {
		t.Errorf("first datapoint = %v", first)
	}
	q := svc.queries[0]
	if q.StartTime.Unix() != 1740830000 || q.EndTime.UnixMilli() != 1740840000500 || q.Period != 60 || q.Dimensions[0].Value != "demo" {
		t.Errorf("service query = %+v", q)
	}
	if len(svc.queries) != 2 || svc.queries[1].Statistic != "SampleCount" {
		t.Errorf("want one service call per statistic, got %+v", svc.queries)
	}

	// Extended statistics, over CBOR, with a unit that matches.
	status, _, cout := cborCall(t, srv.URL, "GetMetricStatistics", cbor.Map{
		"Namespace": cbor.String("AWS/SageMaker"), "MetricName": cbor.String("ModelLatency"), "Unit": cbor.String("Microseconds"),
		"StartTime": &cbor.Tag{ID: 1, Value: cbor.Uint(1740830000)}, "EndTime": &cbor.Tag{ID: 1, Value: cbor.Float64(1740840000.25)},
		"Period": cbor.Uint(60), "ExtendedStatistics": cbor.List{cbor.String("p99")},
	})
	if status != 200 {
		t.Fatalf("GetMetricStatistics p99: %d %v", status, cout)
	}
	dp := cout["Datapoints"].([]any)[0].(map[string]any)
	if dp["ExtendedStatistics"].(map[string]any)["p99"] != cbor.Float64(1234.5) || dp["Unit"] != "Microseconds" || !dp["Timestamp"].(time.Time).Equal(t1) {
		t.Errorf("p99 datapoint = %v", dp)
	}
	// A unit the metric is not recorded in has no data.
	_, _, cout = cborCall(t, srv.URL, "GetMetricStatistics", cbor.Map{
		"Namespace": cbor.String("AWS/SageMaker"), "MetricName": cbor.String("ModelLatency"), "Unit": cbor.String("Seconds"),
		"StartTime": &cbor.Tag{ID: 1, Value: cbor.Uint(1740830000)}, "EndTime": &cbor.Tag{ID: 1, Value: cbor.Uint(1740840000)},
		"Period": cbor.Uint(60), "ExtendedStatistics": cbor.List{cbor.String("p99")},
	})
	if l := cout["Datapoints"].([]any); len(l) != 0 {
		t.Errorf("Datapoints in Seconds = %v, want none", l)
	}

	// GetMetricData over awsQuery, newest first.
	status, body := queryCall(t, srv.URL, url.Values{
		"Action": {"GetMetricData"}, "StartTime": {"2025-03-01T11:00:00Z"}, "EndTime": {"2025-03-01T13:00:00Z"},
		"MetricDataQueries.member.1.Id":                                          {"inv"},
		"MetricDataQueries.member.1.MetricStat.Metric.Namespace":                 {"AWS/SageMaker"},
		"MetricDataQueries.member.1.MetricStat.Metric.MetricName":                {"Invocations"},
		"MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name":  {"EndpointName"},
		"MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Value": {"demo"},
		"MetricDataQueries.member.1.MetricStat.Period":                           {"60"},
		"MetricDataQueries.member.1.MetricStat.Stat":                             {"Sum"},
		"MetricDataQueries.member.2.Id":                                          {"hidden"},
		"MetricDataQueries.member.2.ReturnData":                                  {"false"},
		"MetricDataQueries.member.2.MetricStat.Metric.Namespace":                 {"AWS/SageMaker"},
		"MetricDataQueries.member.2.MetricStat.Metric.MetricName":                {"Invocations"},
		"MetricDataQueries.member.2.MetricStat.Period":                           {"60"},
		"MetricDataQueries.member.2.MetricStat.Stat":                             {"Sum"},
	})
	var md struct {
		Results []struct {
			ID         string      `xml:"Id"`
			Label      string      `xml:"Label"`
			StatusCode string      `xml:"StatusCode"`
			Timestamps []time.Time `xml:"Timestamps>member"`
			Values     []float64   `xml:"Values>member"`
		} `xml:"GetMetricDataResult>MetricDataResults>member"`
	}
	if err := xml.Unmarshal(body, &md); err != nil || status != 200 || len(md.Results) != 1 {
		t.Fatalf("GetMetricData: %d %v %s", status, err, body)
	}
	r := md.Results[0]
	if r.ID != "inv" || r.Label != "Invocations" || r.StatusCode != "Complete" || !slices.Equal(r.Values, []float64{4, 10}) || !r.Timestamps[0].Equal(t1) {
		t.Errorf("result = %+v", r)
	}
	status, _, out = jsonCall(t, srv.URL, "GetMetricData", `{"StartTime":1,"EndTime":2,"MetricDataQueries":[{"Id":"e","Expression":"SUM(METRICS())"}]}`)
	if status != 400 || !strings.Contains(out["message"].(string), "Expression") {
		t.Errorf("GetMetricData with an Expression: %d %v", status, out)
	}

	status, _, out = jsonCall(t, srv.URL, "ListMetrics", `{"Namespace":"AWS/SageMaker","Dimensions":[{"Name":"EndpointName"}]}`)
	if status != 200 {
		t.Fatalf("ListMetrics: %d %v", status, out)
	}
	if m := out["Metrics"].([]any); len(m) != 1 || m[0].(map[string]any)["MetricName"] != "Invocations" {
		t.Errorf("Metrics = %v", out)
	}
}

func TestCloudWatchBodyLimit(t *testing.T) {
	_, srv := newCW(t)
	big := `{"AlarmName":"` + strings.Repeat("x", api.MaxRequestBody) + `"}`
	status, _, out := jsonCall(t, srv.URL, "PutMetricAlarm", big)
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d %v", status, out)
	}
}

func TestIsCloudWatch(t *testing.T) {
	for _, c := range []struct {
		name, method, path string
		header             map[string]string
		want               bool
	}{
		{"cbor", "POST", cborPrefix + "DescribeAlarms", map[string]string{"Smithy-Protocol": "rpc-v2-cbor"}, true},
		{"json", "POST", "/", map[string]string{"X-Amz-Target": "GraniteServiceVersion20100801.DescribeAlarms"}, true},
		{"sagemaker", "POST", "/", map[string]string{"X-Amz-Target": "SageMaker.ListEndpoints", "Authorization": "AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/sagemaker/aws4_request"}, false},
		{"query form", "POST", "/", map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, true},
		{"query signed", "POST", "/x", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=0"}, true},
		{"form to an endpoint", "POST", "/endpoints/demo/invocations", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, false},
		{"native", "GET", "/v1/alarms", nil, false},
		{"query GET", "GET", "/?Action=DescribeAlarms&Version=2010-08-01", nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.path, nil)
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			if got := IsRequest(r); got != c.want {
				t.Errorf("IsRequest = %v, want %v", got, c.want)
			}
		})
	}
}

// TestCloudWatchGzip: a gzip request body, as the SDKs send PutMetricData,
// is decompressed; another encoding, a broken stream or one that inflates
// past api.MaxRequestBody is refused with a status that says so.
func TestCloudWatchGzip(t *testing.T) {
	srv := httptest.NewServer(&API{Service: newMemAlarms()})
	defer srv.Close()
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	post := func(enc string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+cborPrefix+"PutMetricData", bytes.NewReader(body))
		req.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
		req.Header.Set("Content-Type", "application/cbor")
		req.Header.Set("Content-Encoding", enc)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		v, _ := cbor.Decode(raw)
		return resp.StatusCode, fmt.Sprint(v)
	}
	put := cbor.Encode(cbor.Map{"Namespace": cbor.String("App"), "MetricData": cbor.List{cbor.Map{"MetricName": cbor.String("m"), "Value": cbor.Float64(1)}}})
	for _, tt := range []struct {
		name, enc string
		body      []byte
		status    int
		msg       string
	}{
		{"gzip", "gzip", gz(put), 200, ""},
		{"another encoding", "br", put, 400, "not supported"},
		{"not gzip", "gzip", put, 400, "not valid gzip"},
		{"a bomb", "gzip", gz(make([]byte, 2*api.MaxRequestBody)), 413, "decompressed"},
	} {
		status, body := post(tt.enc, tt.body)
		if status != tt.status || !strings.Contains(body, tt.msg) {
			t.Errorf("%s: %d %s, want %d saying %q", tt.name, status, body, tt.status, tt.msg)
		}
	}
}

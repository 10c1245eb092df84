package cloudwatch

import (
	"bytes"
	"context"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/kiln-serve/kiln"
)

// The fuzzers send arbitrary bodies to every operation: the handler must
// answer each with a 2xx or a 4xx, never a 5xx, and never panic (ServeHTTP
// turns a panic into a 500, so that is caught too).

var fuzzOps = []string{"PutMetricAlarm", "PutCompositeAlarm", "DescribeAlarms", "DeleteAlarms", "SetAlarmState", "DescribeAlarmHistory", "GetMetricStatistics", "GetMetricData", "ListMetrics", "PutMetricData", "TagResource", "UntagResource", "ListTagsForResource", "Nope", ""}

// fuzzAlarmARN is the ARN of the alarm fuzzService holds.
const fuzzAlarmARN = "arn:aws:cloudwatch:us-east-1:000000000000:alarm:a"

func fuzzService() *memAlarms {
	svc := newMemAlarms()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"Sum", "Average", "SampleCount", "Minimum", "Maximum", "p99"} {
		svc.points[s] = []kiln.Datapoint{{Timestamp: t0, Value: 1, SampleCount: 1}}
	}
	svc.metrics = []kiln.Metric{{Namespace: "AWS/SageMaker", MetricName: "Invocations"}}
	svc.PutAlarm(context.Background(), &kiln.Alarm{AlarmName: "a", Namespace: "AWS/SageMaker", MetricName: "Invocations", Statistic: "Sum", Period: 60, EvaluationPeriods: 1, ComparisonOperator: kiln.GreaterThanThreshold})
	return svc
}

func checkNo5xx(t *testing.T, w *httptest.ResponseRecorder, op string, body []byte) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s %q: status %d: %s", op, body, w.Code, w.Body.Bytes())
	}
}

func FuzzCBOR(f *testing.F) {
	s := func(v string) cbor.String { return cbor.String(v) }
	ts := &cbor.Tag{ID: 1, Value: cbor.Float64(1740830400.5)}
	seeds := map[string]cbor.Map{
		"PutMetricAlarm": {"AlarmName": s("x"), "Namespace": s("AWS/SageMaker"), "MetricName": s("Invocations"), "Statistic": s("Sum"),
			"Period": cbor.Uint(60), "EvaluationPeriods": cbor.Uint(1), "Threshold": cbor.Float64(1), "ComparisonOperator": s("GreaterThanThreshold"),
			"Dimensions": cbor.List{cbor.Map{"Name": s("EndpointName"), "Value": s("demo")}}, "Tags": cbor.List{cbor.Map{"Key": s("k"), "Value": s("v")}}},
		"DescribeAlarms":       {"AlarmNames": cbor.List{s("a")}, "MaxRecords": cbor.Uint(10), "StateValue": s("OK"), "NextToken": s("YWxhcm06YQ")},
		"DeleteAlarms":         {"AlarmNames": cbor.List{s("a")}},
		"SetAlarmState":        {"AlarmName": s("a"), "StateValue": s("ALARM"), "StateReason": s("r"), "StateReasonData": s("{}")},
		"DescribeAlarmHistory": {"AlarmName": s("a"), "StartDate": ts, "EndDate": &cbor.Tag{ID: 1, Value: cbor.Uint(1840830400)}, "ScanBy": s("TimestampAscending")},
		"GetMetricStatistics": {"Namespace": s("AWS/SageMaker"), "MetricName": s("Invocations"), "StartTime": &cbor.Tag{ID: 1, Value: cbor.Uint(1)}, "EndTime": ts,
			"Period": cbor.Uint(60), "Statistics": cbor.List{s("Sum"), s("Average")}},
		"GetMetricData": {"StartTime": &cbor.Tag{ID: 1, Value: cbor.Uint(1)}, "EndTime": ts, "MetricDataQueries": cbor.List{cbor.Map{"Id": s("m1"),
			"MetricStat": cbor.Map{"Metric": cbor.Map{"Namespace": s("AWS/SageMaker"), "MetricName": s("Invocations")}, "Period": cbor.Uint(60), "Stat": s("p99")}}}},
		"ListMetrics":         {"Namespace": s("AWS/SageMaker"), "Dimensions": cbor.List{cbor.Map{"Name": s("EndpointName")}}},
		"TagResource":         {"ResourceARN": s(fuzzAlarmARN), "Tags": cbor.List{cbor.Map{"Key": s("k"), "Value": s("v")}}},
		"UntagResource":       {"ResourceARN": s(fuzzAlarmARN), "TagKeys": cbor.List{s("k")}},
		"ListTagsForResource": {"ResourceARN": s(fuzzAlarmARN)},
		"PutMetricData": {"Namespace": s("App"), "MetricData": cbor.List{cbor.Map{"MetricName": s("m"), "Value": cbor.Float64(1.5), "Timestamp": ts,
			"Dimensions": cbor.List{cbor.Map{"Name": s("d"), "Value": s("v")}}}, cbor.Map{"MetricName": s("m"), "Values": cbor.List{cbor.Float64(1), cbor.Uint(2)}, "Counts": cbor.List{cbor.Uint(3), cbor.Float64(1)}},
			cbor.Map{"MetricName": s("m"), "StatisticValues": cbor.Map{"SampleCount": cbor.Uint(2), "Sum": cbor.Float64(3), "Minimum": cbor.Float64(1), "Maximum": cbor.Float64(2)}}}},
	}
	for op, in := range seeds {
		f.Add(op, cbor.Encode(in))
	}
	f.Add("DescribeAlarms", []byte{})
	f.Add("DescribeAlarms", []byte{0xbf, 0x61, 0x41, 0xff}) // indefinite map, truncated
	f.Add("GetMetricData", []byte{0xc1, 0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		cw := &API{Service: fuzzService()}
		r := httptest.NewRequest("POST", cborPrefix+url.PathEscape(op), bytes.NewReader(body))
		r.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
		r.Header.Set("Content-Type", "application/cbor")
		w := httptest.NewRecorder()
		cw.ServeHTTP(w, r)
		checkNo5xx(t, w, op, body)
		if w.Header().Get("Smithy-Protocol") != "rpc-v2-cbor" {
			t.Fatalf("no Smithy-Protocol header")
		}
		if _, err := cbor.Decode(w.Body.Bytes()); err != nil {
			t.Fatalf("response is not CBOR: %v", err)
		}
	})
}

func FuzzJSON10(f *testing.F) {
	seeds := map[string]string{
		"PutMetricAlarm": `{"AlarmName":"x","Namespace":"AWS/SageMaker","MetricName":"ModelLatency","ExtendedStatistic":"p99","Period":10,
			"EvaluationPeriods":3,"DatapointsToAlarm":2,"Threshold":1e5,"ComparisonOperator":"GreaterThanThreshold","TreatMissingData":"breaching",
			"Dimensions":[{"Name":"EndpointName","Value":"demo"}],"Unit":"Microseconds","ActionsEnabled":true}`,
		"DescribeAlarms":       `{"AlarmNamePrefix":"a","AlarmTypes":["MetricAlarm"],"MaxRecords":1}`,
		"DeleteAlarms":         `{"AlarmNames":["a"]}`,
		"SetAlarmState":        `{"AlarmName":"a","StateValue":"OK","StateReason":"r"}`,
		"DescribeAlarmHistory": `{"HistoryItemType":"StateUpdate","StartDate":1,"EndDate":"2030-01-01T00:00:00Z","MaxRecords":5,"NextToken":"aGlzdG9yeTox"}`,
		"GetMetricStatistics":  `{"Namespace":"AWS/SageMaker","MetricName":"Invocations","StartTime":1,"EndTime":1e9,"Period":60,"ExtendedStatistics":["p99"],"Unit":"None"}`,
		"GetMetricData":        `{"StartTime":1,"EndTime":2e9,"ScanBy":"TimestampAscending","MetricDataQueries":[{"Id":"a","Label":"l","MetricStat":{"Metric":{"Namespace":"AWS/SageMaker","MetricName":"Invocations","Dimensions":[{"Name":"EndpointName","Value":"d"}]},"Period":60,"Stat":"Sum"}}]}`,
		"ListMetrics":          `{"MetricName":"Invocations","NextToken":"bWV0cmljczow"}`,
		"TagResource":          `{"ResourceARN":"` + fuzzAlarmARN + `","Tags":[{"Key":"k","Value":"v"}]}`,
		"UntagResource":        `{"ResourceARN":"` + fuzzAlarmARN + `","TagKeys":["k"]}`,
		"ListTagsForResource":  `{"ResourceARN":"` + fuzzAlarmARN + `"}`,
		"PutCompositeAlarm":    `{"AlarmName":"c","AlarmRule":"ALARM(a) AND NOT (OK(\"b\") OR TRUE)","Tags":[{"Key":"k","Value":"v"}]}`,
		"PutMetricData":        `{"Namespace":"App","MetricData":[{"MetricName":"m","Value":1,"Unit":"Count"},{"MetricName":"m","Values":[1,2],"Counts":[1,1],"Timestamp":1.7e9}]}`,
	}
	for op, body := range seeds {
		f.Add(op, []byte(body))
	}
	f.Add("DescribeAlarms", []byte(`null`))
	f.Add("PutMetricAlarm", []byte(`{"Threshold":"NaN","Period":1e400}`))
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		cw := &API{Service: fuzzService()}
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set("X-Amz-Target", targetPrefix+op)
		r.Header.Set("Content-Type", "application/x-amz-json-1.0")
		w := httptest.NewRecorder()
		cw.ServeHTTP(w, r)
		checkNo5xx(t, w, op, body)
	})
}

func FuzzQuery(f *testing.F) {
	seeds := []string{
		"Action=PutMetricAlarm&Version=2010-08-01&AlarmName=x&Namespace=AWS%2FSageMaker&MetricName=Invocations&Statistic=Sum&Period=60&EvaluationPeriods=1&Threshold=0&ComparisonOperator=GreaterThanThreshold&Dimensions.member.1.Name=EndpointName&Dimensions.member.1.Value=demo&AlarmActions=",
		"Action=DescribeAlarms&Version=2010-08-01&AlarmNames.member.1=a&AlarmNames.member.2=b&StateValue=ALARM",
		"Action=DeleteAlarms&Version=2010-08-01&AlarmNames.member.1=a",
		"Action=SetAlarmState&Version=2010-08-01&AlarmName=a&StateValue=ALARM&StateReason=r",
		"Action=DescribeAlarmHistory&Version=2010-08-01&StartDate=2025-01-01T00%3A00%3A00Z&EndDate=2030-01-01T00%3A00%3A00.123456Z",
		"Action=GetMetricStatistics&Version=2010-08-01&Namespace=AWS%2FSageMaker&MetricName=Invocations&StartTime=2025-01-01T00%3A00%3A00Z&EndTime=2025-01-02T00%3A00%3A00Z&Period=60&Statistics.member.1=Sum",
		"Action=GetMetricData&Version=2010-08-01&StartTime=2025-01-01T00%3A00%3A00Z&EndTime=2025-01-02T00%3A00%3A00Z&MetricDataQueries.member.1.Id=m&MetricDataQueries.member.1.MetricStat.Metric.Namespace=AWS%2FSageMaker&MetricDataQueries.member.1.MetricStat.Metric.MetricName=Invocations&MetricDataQueries.member.1.MetricStat.Period=60&MetricDataQueries.member.1.MetricStat.Stat=Sum",
		"Action=ListMetrics&Version=2010-08-01&Dimensions.member.1.Name=EndpointName",
		"Action=DescribeAlarms&AlarmNames=x&AlarmNames.member.1=y",
		"Action=TagResource&Version=2010-08-01&ResourceARN=arn%3Aaws%3Acloudwatch%3Aus-east-1%3A000000000000%3Aalarm%3Aa&Tags.member.1.Key=k&Tags.member.1.Value=v",
		"Action=UntagResource&Version=2010-08-01&ResourceARN=arn%3Aaws%3Acloudwatch%3Aus-east-1%3A000000000000%3Aalarm%3Aa&TagKeys.member.1=k",
		"Action=ListTagsForResource&Version=2010-08-01&ResourceARN=arn%3Aaws%3Acloudwatch%3Aus-east-1%3A000000000000%3Aalarm%3Aa",
		"Action=PutCompositeAlarm&Version=2010-08-01&AlarmName=c&AlarmRule=ALARM%28a%29+OR+INSUFFICIENT_DATA%28a%29",
		"Action=PutMetricData&Version=2010-08-01&Namespace=App&MetricData.member.1.MetricName=m&MetricData.member.1.Value=1.5&MetricData.member.1.Dimensions.member.1.Name=d&MetricData.member.1.Dimensions.member.1.Value=v&MetricData.member.2.MetricName=m&MetricData.member.2.StatisticValues.SampleCount=2&MetricData.member.2.StatisticValues.Sum=3&MetricData.member.2.StatisticValues.Minimum=1&MetricData.member.2.StatisticValues.Maximum=2",
		"Action=%zz",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cw := &API{Service: fuzzService()}
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		cw.ServeHTTP(w, r)
		checkNo5xx(t, w, "query", body)
		if ct := w.Header().Get("Content-Type"); ct != "text/xml" {
			t.Fatalf("Content-Type %q", ct)
		}
	})
}

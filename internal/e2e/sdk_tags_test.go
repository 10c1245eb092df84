package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/google/go-cmp/cmp"
)

// The tags of models, endpoint configs and endpoints through the Go SDK's
// AddTags, ListTags and DeleteTags, on kiln serve.
func TestSageMakerTags(t *testing.T) {
	p := startKiln(t, "")
	sm, _ := smClients(p.url, "AKIDANYTHING", "any-secret-will-do")
	ctx := context.Background()
	createDemo(t, sm, "tg", 1)
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	eo := must[*sagemaker.CreateEndpointOutput](t, "CreateEndpoint")(sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{
		EndpointName: aws.String("tg"), EndpointConfigName: aws.String("tg-v1"),
		Tags: []types.Tag{tag("team", "ml"), tag("tier", "gold")},
	}))
	list := func(arn string) map[string]string {
		t.Helper()
		out, err := sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(arn)})
		if err != nil {
			t.Fatalf("ListTags %s: %v", arn, err)
		}
		m := map[string]string{}
		for _, tg := range out.Tags {
			m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		return m
	}
	ep := aws.ToString(eo.EndpointArn)
	if got, want := list(ep), map[string]string{"team": "ml", "tier": "gold"}; !cmp.Equal(got, want) {
		t.Errorf("tags given at creation: %v, want %v", got, want)
	}
	added, err := sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(ep), Tags: []types.Tag{tag("tier", "silver"), tag("owner", "ana")}})
	if err != nil {
		t.Fatalf("AddTags: %v", err)
	}
	want := map[string]string{"team": "ml", "tier": "silver", "owner": "ana"}
	if len(added.Tags) != 3 || !cmp.Equal(list(ep), want) {
		t.Errorf("after AddTags: returned %d tags, listed %v; want %v", len(added.Tags), list(ep), want)
	}
	if _, err := sm.DeleteTags(ctx, &sagemaker.DeleteTagsInput{ResourceArn: aws.String(ep), TagKeys: []string{"team", "never-there"}}); err != nil {
		t.Fatalf("DeleteTags: %v", err)
	}
	if got, want := list(ep), map[string]string{"tier": "silver", "owner": "ana"}; !cmp.Equal(got, want) {
		t.Errorf("after DeleteTags: %v, want %v", got, want)
	}

	// A model without tags has an empty list; an endpoint config whose name
	// has capitals is found by its ARN, which lower-cases it.
	dm := must[*sagemaker.DescribeModelOutput](t, "DescribeModel")(sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("tg-v1")}))
	if got := list(aws.ToString(dm.ModelArn)); len(got) != 0 {
		t.Errorf("model tags %v, want none", got)
	}
	co := must[*sagemaker.CreateEndpointConfigOutput](t, "CreateEndpointConfig")(sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("Tg-Mixed"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("tg-v1"), InitialInstanceCount: aws.Int32(1)}},
	}))
	cfg := aws.ToString(co.EndpointConfigArn)
	if !strings.HasSuffix(cfg, "/tg-mixed") {
		t.Fatalf("EndpointConfigArn %q", cfg)
	}
	must[*sagemaker.AddTagsOutput](t, "AddTags")(sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(cfg), Tags: []types.Tag{tag("k", "v")}}))
	if got := list(cfg); !cmp.Equal(got, map[string]string{"k": "v"}) {
		t.Errorf("endpoint config tags %v", got)
	}

	// Mistakes get a ValidationException that names them, and change nothing.
	many := make([]types.Tag, 49)
	for i := range many {
		many[i] = tag(fmt.Sprintf("k%d", i), "v")
	}
	for _, tt := range []struct {
		name string
		call func() error
		msg  string
	}{
		{"unknown endpoint", func() error {
			_, err := sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String("arn:aws:sagemaker:us-east-1:000000000000:endpoint/nope")})
			return err
		}, "Could not find"},
		{"another account", func() error {
			_, err := sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String("arn:aws:sagemaker:us-east-1:123456789012:endpoint/tg")})
			return err
		}, "account 000000000000"},
		{"not an ARN", func() error {
			_, err := sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String("tg"), Tags: []types.Tag{tag("a", "b")}})
			return err
		}, "not a SageMaker ARN"},
		{"a kind without tags", func() error {
			_, err := sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String("arn:aws:sagemaker:us-east-1:000000000000:training-job/x")})
			return err
		}, "training-job"},
		{"more than 50", func() error {
			_, err := sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(ep), Tags: many})
			return err
		}, "at most 50"},
		{"a key twice", func() error {
			_, err := sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(ep), Tags: []types.Tag{tag("a", "1"), tag("a", "2")}})
			return err
		}, "given twice"},
		{"a token never given", func() error {
			_, err := sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(ep), NextToken: aws.String("bogus")})
			return err
		}, "NextToken"},
	} {
		err := tt.call()
		if awsErrorCode(err) != "ValidationException" || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want a ValidationException saying %q", tt.name, err, tt.msg)
		}
	}
	if got, want := list(ep), map[string]string{"tier": "silver", "owner": "ana"}; !cmp.Equal(got, want) {
		t.Errorf("after the refused calls: %v, want %v", got, want)
	}
	// The endpoint still comes up: the tags did not disturb its record.
	waitInServiceSDK(t, sm, "tg", 60*time.Second)
}

// The tags of alarms through the Go SDK's TagResource, UntagResource and
// ListTagsForResource; PutMetricAlarm on an existing alarm leaves its tags
// alone, as CloudWatch does.
func TestCloudWatchTags(t *testing.T) {
	k := startCloudWatchKiln(t, false)
	cw := k.client()
	ctx := context.Background()
	put := func(tags ...cwtypes.Tag) {
		t.Helper()
		_, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String("tagged"), Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocation5XXErrors"),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("EndpointName"), Value: aws.String("x")}},
			Statistic:  cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
			ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold, Tags: tags,
		})
		if err != nil {
			t.Fatalf("PutMetricAlarm: %v", err)
		}
	}
	tag := func(k, v string) cwtypes.Tag { return cwtypes.Tag{Key: aws.String(k), Value: aws.String(v)} }
	put(tag("team", "ml"))
	da := must[*cloudwatch.DescribeAlarmsOutput](t, "DescribeAlarms")(cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"tagged"}}))
	if len(da.MetricAlarms) != 1 {
		t.Fatalf("DescribeAlarms: %d alarms", len(da.MetricAlarms))
	}
	arn := aws.ToString(da.MetricAlarms[0].AlarmArn)
	list := func() map[string]string {
		t.Helper()
		out, err := cw.ListTagsForResource(ctx, &cloudwatch.ListTagsForResourceInput{ResourceARN: aws.String(arn)})
		if err != nil {
			t.Fatalf("ListTagsForResource: %v", err)
		}
		m := map[string]string{}
		for _, tg := range out.Tags {
			m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		return m
	}
	if got := list(); !cmp.Equal(got, map[string]string{"team": "ml"}) {
		t.Errorf("tags given at creation: %v", got)
	}
	if _, err := cw.TagResource(ctx, &cloudwatch.TagResourceInput{ResourceARN: aws.String(arn), Tags: []cwtypes.Tag{tag("env", "prod"), tag("team", "platform")}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if _, err := cw.UntagResource(ctx, &cloudwatch.UntagResourceInput{ResourceARN: aws.String(arn), TagKeys: []string{"env"}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	put(tag("ignored", "on update"))
	if got := list(); !cmp.Equal(got, map[string]string{"team": "platform"}) {
		t.Errorf("after TagResource, UntagResource and an update: %v, want team=platform", got)
	}
	_, err := cw.ListTagsForResource(ctx, &cloudwatch.ListTagsForResourceInput{ResourceARN: aws.String("arn:aws:cloudwatch:us-east-1:000000000000:alarm:nope")})
	if apiCode(err) != "ResourceNotFoundException" {
		t.Errorf("unknown alarm: %v, want ResourceNotFoundException", err)
	}
	_, err = cw.TagResource(ctx, &cloudwatch.TagResourceInput{ResourceARN: aws.String("arn:aws:sagemaker:us-east-1:000000000000:endpoint/x"), Tags: []cwtypes.Tag{tag("a", "b")}})
	if err == nil || !strings.Contains(err.Error(), "not a CloudWatch alarm") {
		t.Errorf("a SageMaker ARN: %v, want an error saying it is not an alarm's", err)
	}
}

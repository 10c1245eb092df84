package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/kiln-serve/kiln"
)

func quotaCWClient(url string) *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDANYTHING", SecretAccessKey: "any"}, nil
		}),
		RetryMaxAttempts: 1,
	})
}

// Quotas set with --quota are enforced through every API: SageMaker's
// ResourceLimitExceeded and CloudWatch's LimitExceeded through the AWS SDK,
// a 403 with the code limit_exceeded through /v1. Freeing one makes room.
func TestQuotas(t *testing.T) {
	p := startKiln(t, "", "--quota", "models=2", "--quota", "alarms=1", "--quota", "record-bytes=4096")
	ctx := context.Background()
	sm, _ := smClients(p.url, "AKIDANYTHING", "any-secret-will-do")
	model := func(name string, env map[string]string) error {
		_, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{
			ModelName:        aws.String(name),
			PrimaryContainer: &types.ContainerDefinition{Image: aws.String("true"), Environment: env},
		})
		return err
	}
	for _, n := range []string{"m1", "m2"} {
		if err := model(n, nil); err != nil {
			t.Fatalf("CreateModel %s: %v", n, err)
		}
	}
	err := model("m3", nil)
	var rle *types.ResourceLimitExceeded
	if !errors.As(err, &rle) || !strings.Contains(err.Error(), "--quota models=N") {
		t.Fatalf("CreateModel beyond the quota: %v, want ResourceLimitExceeded naming the flag", err)
	}
	// A name that exists is a conflict, as below the limit.
	if err := model("m2", nil); apiCode(err) != "ValidationException" || !strings.Contains(err.Error(), "already existing") {
		t.Errorf("CreateModel of an existing name at the limit: %v", err)
	}
	// Through /v1: 403 and the code.
	req, _ := http.NewRequest(http.MethodPost, p.url+"/v1/models", strings.NewReader(`{"ModelName":"m3","PrimaryContainer":{"Image":"true"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"limit_exceeded"`) {
		t.Fatalf("POST /v1/models beyond the quota: %d %s", resp.StatusCode, body)
	}
	if _, err := p.client.CreateModel(ctx, &kiln.Model{ModelName: "m3", PrimaryContainer: &kiln.ContainerDef{Image: "true"}}); kiln.ErrorCode(err) != kiln.ELIMIT {
		t.Errorf("client CreateModel beyond the quota: %v, want code %s", err, kiln.ELIMIT)
	}
	// Deleting one makes room.
	if _, err := sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("m1")}); err != nil {
		t.Fatal(err)
	}
	// A record above record-bytes is refused, whatever the count.
	big := map[string]string{}
	for i := range 10 {
		big[fmt.Sprintf("K%d", i)] = strings.Repeat("x", 1000)
	}
	if err := model("big", big); !errors.As(err, &rle) || !strings.Contains(err.Error(), "record-bytes") {
		t.Fatalf("CreateModel of 10 KB: %v, want ResourceLimitExceeded naming record-bytes", err)
	}
	if err := model("m3", nil); err != nil {
		t.Fatalf("CreateModel after a delete: %v", err)
	}

	// Alarms through the CloudWatch SDK.
	cw := quotaCWClient(p.url)
	put := func(name string, period, n int32) error {
		_, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String(name), Namespace: aws.String("AWS/SageMaker"), MetricName: aws.String("Invocations"),
			Statistic: cwtypes.StatisticSum, Period: aws.Int32(period), EvaluationPeriods: aws.Int32(n),
			Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
		})
		return err
	}
	if err := put("a1", 60, 3); err != nil {
		t.Fatalf("PutMetricAlarm a1: %v", err)
	}
	var lef *cwtypes.LimitExceededFault
	if err := put("a2", 60, 3); !errors.As(err, &lef) {
		t.Fatalf("PutMetricAlarm beyond the quota: %v (%s), want LimitExceeded", err, apiCode(err))
	}
	// Updating an existing alarm is not a new one.
	if err := put("a1", 60, 5); err != nil {
		t.Fatalf("PutMetricAlarm updating a1: %v", err)
	}
	// CloudWatch's evaluation range: one day for periods under an hour.
	if err := put("a1", 60, 1441); apiCode(err) != "ValidationError" || !strings.Contains(err.Error(), "EvaluationPeriods") {
		t.Fatalf("PutMetricAlarm of 1441 minutes: %v, want ValidationError naming EvaluationPeriods", err)
	}
	if err := put("a1", 86400, 1<<31-1); apiCode(err) != "ValidationError" {
		t.Fatalf("PutMetricAlarm of 2^31-1 days: %v, want ValidationError", err)
	}
}

// A --quota that is not one is refused at start, with the kinds listed.
func TestQuotaFlagRefused(t *testing.T) {
	for _, arg := range []string{"bogus=1", "models=0", "models", "alarms=-3"} {
		out, err := exec.Command(kilnBin, "serve", "--addr", freeAddr(t), "--data-dir", t.TempDir(), "--quota", arg).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--quota") {
			t.Errorf("--quota %s: %v %s, want a refusal naming --quota", arg, err, out)
		}
	}
}

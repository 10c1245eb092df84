package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
	"github.com/aws/smithy-go"

	"github.com/kiln-serve/kiln/internal/api/client"
	"github.com/kiln-serve/kiln/internal/awstest"
)

// smClients returns the current aws-sdk-go-v2 SageMaker and SageMaker
// Runtime clients pointed at Kiln by their endpoint URL alone.
func smClients(url, keyID, secret string) (*sagemaker.Client, *sagemakerruntime.Client) {
	creds := credentials.NewStaticCredentialsProvider(keyID, secret, "")
	sm := sagemaker.New(sagemaker.Options{BaseEndpoint: aws.String(url), Region: "us-east-1", Credentials: creds, RetryMaxAttempts: 1})
	rt := sagemakerruntime.New(sagemakerruntime.Options{BaseEndpoint: aws.String(url), Region: "us-east-1", Credentials: creds, RetryMaxAttempts: 1})
	return sm, rt
}

// awsErrorCode returns the AWS error code in err's chain, or "".
func awsErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func fastWait(o *sagemaker.EndpointInServiceWaiterOptions) {
	o.MinDelay, o.MaxDelay = time.Second, 2*time.Second
}

func waitInServiceSDK(t *testing.T, sm *sagemaker.Client, name string, timeout time.Duration) *sagemaker.DescribeEndpointOutput {
	t.Helper()
	out, err := sagemaker.NewEndpointInServiceWaiter(sm, fastWait).WaitForOutput(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, timeout)
	if err != nil {
		t.Fatalf("EndpointInService waiter for %s: %v", name, err)
	}
	return out
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// createDemo creates, through the SDK, the models <prefix>-v1 and -v2 of
// the demo model and an endpoint config of each with the given instances.
func createDemo(t *testing.T, sm *sagemaker.Client, prefix string, instances int32) {
	t.Helper()
	ctx := context.Background()
	for _, v := range []string{"v1", "v2"} {
		must[*sagemaker.CreateModelOutput](t, "CreateModel")(sm.CreateModel(ctx, &sagemaker.CreateModelInput{
			ModelName: aws.String(prefix + "-" + v),
			PrimaryContainer: &types.ContainerDefinition{
				Image:       aws.String(kilnBin + " demo-model"),
				Environment: map[string]string{"KILN_DEMO_VERSION": v},
			},
			ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/KilnIgnoresIt"),
		}))
		must[*sagemaker.CreateEndpointConfigOutput](t, "CreateEndpointConfig")(sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
			EndpointConfigName: aws.String(prefix + "-" + v),
			ProductionVariants: []types.ProductionVariant{{
				VariantName: aws.String("AllTraffic"), ModelName: aws.String(prefix + "-" + v),
				InitialInstanceCount: aws.Int32(instances), InstanceType: types.ProductionVariantInstanceTypeMlM5Large,
			}},
		}))
	}
}

func invokeSDK(t *testing.T, rt *sagemakerruntime.Client, endpoint string) (version, variant string) {
	t.Helper()
	out, err := rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String(endpoint), Body: []byte(body), ContentType: aws.String("application/json"), Accept: aws.String("application/json"),
	})
	if err != nil {
		t.Fatalf("InvokeEndpoint %s: %v", endpoint, err)
	}
	var res struct {
		ModelVersion string `json:"model_version"`
	}
	if err := json.Unmarshal(out.Body, &res); err != nil || !strings.HasPrefix(aws.ToString(out.ContentType), "application/json") {
		t.Fatalf("InvokeEndpoint %s answered %s %q: %v", endpoint, aws.ToString(out.ContentType), out.Body, err)
	}
	return res.ModelVersion, aws.ToString(out.InvokedProductionVariant)
}

// The control-plane life cycle and invocations through the current Go SDK,
// with its waiters and paginators, as a SageMaker user would run them.
func TestSageMakerSDK(t *testing.T) {
	p := startKiln(t, "")
	// Without --credentials-file any signature is accepted.
	sm, rt := smClients(p.url, "AKIDANYTHING", "any-secret-will-do")
	ctx := context.Background()

	createDemo(t, sm, "sdk", 2)
	must[*sagemaker.CreateEndpointConfigOutput](t, "CreateEndpointConfig")(sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("sdk-small"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("sdk-v1"), InitialInstanceCount: aws.Int32(1)}},
	}))
	eo := must[*sagemaker.CreateEndpointOutput](t, "CreateEndpoint")(sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("sdk"), EndpointConfigName: aws.String("sdk-v1")}))
	if got, want := aws.ToString(eo.EndpointArn), "arn:aws:sagemaker:us-east-1:000000000000:endpoint/sdk"; got != want {
		t.Errorf("EndpointArn = %q, want %q", got, want)
	}
	must[*sagemaker.CreateEndpointOutput](t, "CreateEndpoint")(sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("sdk-b"), EndpointConfigName: aws.String("sdk-small")}))
	de := waitInServiceSDK(t, sm, "sdk", 60*time.Second)
	waitInServiceSDK(t, sm, "sdk-b", 60*time.Second)
	if len(de.ProductionVariants) != 1 {
		t.Fatalf("DescribeEndpoint: %d variants", len(de.ProductionVariants))
	}
	v := de.ProductionVariants[0]
	if aws.ToInt32(v.CurrentInstanceCount) != 2 || aws.ToFloat32(v.CurrentWeight) != 1 || len(v.DeployedImages) != 1 ||
		aws.ToString(v.DeployedImages[0].SpecifiedImage) != kilnBin+" demo-model" || de.CreationTime == nil || de.PendingDeploymentSummary != nil {
		t.Errorf("DescribeEndpoint = %+v, variant %+v", de, v)
	}

	if version, variant := invokeSDK(t, rt, "sdk"); version != "v1" || variant != "AllTraffic" {
		t.Errorf("InvokeEndpoint: version %q variant %q, want v1 AllTraffic", version, variant)
	}

	// Typed runtime errors.
	_, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("nope"), Body: []byte(body), ContentType: aws.String("application/json")})
	var ve *rttypes.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.ErrorMessage(), "nope") {
		t.Errorf("InvokeEndpoint of a missing endpoint: %T %v, want *types.ValidationError naming it", err, err)
	}
	_, err = rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("sdk"), Body: []byte("not json"), ContentType: aws.String("application/json")})
	var me *rttypes.ModelError
	if !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 400 || aws.ToString(me.OriginalMessage) == "" {
		t.Errorf("InvokeEndpoint with input the model refuses: %T %v, want *types.ModelError with OriginalStatusCode 400", err, err)
	} else {
		t.Logf("ModelError: %v (OriginalStatusCode %d, OriginalMessage %q)", me, aws.ToInt32(me.OriginalStatusCode), aws.ToString(me.OriginalMessage))
	}
	_, err = rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("sdk"), Body: []byte(body), ContentType: aws.String("application/json"), TargetVariant: aws.String("Nope")})
	if !errors.As(err, &ve) {
		t.Errorf("InvokeEndpoint with an unknown TargetVariant: %T %v, want *types.ValidationError", err, err)
	}

	// Paging: one endpoint a page.
	var names []string
	for pg := sagemaker.NewListEndpointsPaginator(sm, &sagemaker.ListEndpointsInput{SortBy: types.EndpointSortKeyName, SortOrder: types.OrderKeyAscending, MaxResults: aws.Int32(1)}); pg.HasMorePages(); {
		out := must[*sagemaker.ListEndpointsOutput](t, "ListEndpoints")(pg.NextPage(ctx))
		if len(out.Endpoints) > 1 {
			t.Errorf("a page of %d endpoints with MaxResults 1", len(out.Endpoints))
		}
		for _, e := range out.Endpoints {
			names = append(names, aws.ToString(e.EndpointName))
			if e.EndpointStatus != types.EndpointStatusInService || e.CreationTime == nil {
				t.Errorf("endpoint summary %+v", e)
			}
		}
	}
	if strings.Join(names, ",") != "sdk,sdk-b" {
		t.Errorf("ListEndpoints by name, a page each: %v", names)
	}
	var models []string
	for pg := sagemaker.NewListModelsPaginator(sm, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1)}); pg.HasMorePages(); {
		for _, m := range must[*sagemaker.ListModelsOutput](t, "ListModels")(pg.NextPage(ctx)).Models {
			models = append(models, aws.ToString(m.ModelName))
		}
	}
	if strings.Join(models, ",") != "sdk-v2,sdk-v1" {
		t.Errorf("ListModels newest first: %v", models)
	}

	// A canary update; DescribeEndpoint shows it pending while it runs.
	must[*sagemaker.UpdateEndpointOutput](t, "UpdateEndpoint")(sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{
		EndpointName: aws.String("sdk"), EndpointConfigName: aws.String("sdk-v2"),
		DeploymentConfig: &types.DeploymentConfig{BlueGreenUpdatePolicy: &types.BlueGreenUpdatePolicy{
			TrafficRoutingConfiguration: &types.TrafficRoutingConfig{
				Type: types.TrafficRoutingConfigTypeCanary, WaitIntervalInSeconds: aws.Int32(3),
				CanarySize: &types.CapacitySize{Type: types.CapacitySizeTypeInstanceCount, Value: aws.Int32(1)},
			},
			TerminationWaitInSeconds: aws.Int32(0),
		}},
	}))
	de = must[*sagemaker.DescribeEndpointOutput](t, "DescribeEndpoint")(sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("sdk")}))
	pend := de.PendingDeploymentSummary
	if de.EndpointStatus != types.EndpointStatusUpdating || pend == nil || aws.ToString(pend.EndpointConfigName) != "sdk-v2" || pend.StartTime == nil ||
		len(pend.ProductionVariants) != 1 || aws.ToString(pend.ProductionVariants[0].VariantName) != "AllTraffic" || aws.ToInt32(pend.ProductionVariants[0].DesiredInstanceCount) != 2 {
		t.Errorf("DescribeEndpoint during the update: status %s, pending %+v", de.EndpointStatus, pend)
	} else {
		t.Logf("pending: %s since %v, variant %+v", aws.ToString(pend.EndpointConfigName), pend.StartTime, pend.ProductionVariants[0])
	}
	_, err = sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("sdk"), EndpointConfigName: aws.String("sdk-v1")})
	if awsErrorCode(err) != "ValidationException" || !strings.Contains(err.Error(), "Cannot update in-progress endpoint") {
		t.Errorf("a second UpdateEndpoint: %v", err)
	}
	de = waitInServiceSDK(t, sm, "sdk", 90*time.Second)
	if aws.ToString(de.EndpointConfigName) != "sdk-v2" || de.PendingDeploymentSummary != nil || aws.ToString(de.FailureReason) != "" ||
		de.LastDeploymentConfig == nil || de.LastDeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.Type != types.TrafficRoutingConfigTypeCanary {
		t.Errorf("after the update: config %s, pending %+v, failure %q, last config %+v", aws.ToString(de.EndpointConfigName), de.PendingDeploymentSummary, aws.ToString(de.FailureReason), de.LastDeploymentConfig)
	}
	if version, _ := invokeSDK(t, rt, "sdk"); version != "v2" {
		t.Errorf("after the update the model answers %q, want v2", version)
	}

	must[*sagemaker.UpdateEndpointWeightsAndCapacitiesOutput](t, "UpdateEndpointWeightsAndCapacities")(sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName:                aws.String("sdk-b"),
		DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{{VariantName: aws.String("AllTraffic"), DesiredWeight: aws.Float32(2)}},
	}))
	de = waitInServiceSDK(t, sm, "sdk-b", 60*time.Second)
	if w := aws.ToFloat32(de.ProductionVariants[0].DesiredWeight); w != 2 {
		t.Errorf("DesiredWeight after UpdateEndpointWeightsAndCapacities = %v, want 2", w)
	}

	for _, name := range []string{"sdk", "sdk-b"} {
		must[*sagemaker.DeleteEndpointOutput](t, "DeleteEndpoint")(sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(name)}))
		err := sagemaker.NewEndpointDeletedWaiter(sm, func(o *sagemaker.EndpointDeletedWaiterOptions) { o.MinDelay, o.MaxDelay = time.Second, 2*time.Second }).
			Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, 60*time.Second)
		if err != nil {
			t.Errorf("EndpointDeleted waiter for %s: %v", name, err)
		}
	}
	_, err = sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("sdk")})
	if awsErrorCode(err) != "ValidationException" || !strings.Contains(err.Error(), `Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/sdk"`) {
		t.Errorf("DescribeEndpoint after delete: %v", err)
	}
	for _, c := range []string{"sdk-v1", "sdk-v2", "sdk-small"} {
		must[*sagemaker.DeleteEndpointConfigOutput](t, "DeleteEndpointConfig")(sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String(c)}))
	}
	for _, m := range []string{"sdk-v1", "sdk-v2"} {
		must[*sagemaker.DeleteModelOutput](t, "DeleteModel")(sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String(m)}))
	}
	if out := must[*sagemaker.ListModelsOutput](t, "ListModels")(sm.ListModels(ctx, &sagemaker.ListModelsInput{})); len(out.Models) != 0 {
		t.Errorf("%d models left", len(out.Models))
	}
}

// Bad input to the SageMaker API gets the protocol's error shape with a
// message naming the problem: never a 500, and nothing is written.
func TestSageMakerBadInput(t *testing.T) {
	p := startKiln(t, "")
	cases := []struct {
		name, target, body string
		status             int
		code, want         string
	}{
		{"malformed JSON", "SageMaker.CreateModel", `{"ModelName": "a",`, 400, "SerializationException", "truncated"},
		{"not an object", "SageMaker.CreateModel", `"a"`, 400, "SerializationException", "object"},
		{"wrong type", "SageMaker.CreateModel", `{"ModelName": 5}`, 400, "SerializationException", "ModelName"},
		{"wrong nested type", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"m","InitialInstanceCount":true}]}`, 400, "SerializationException", "InitialInstanceCount"},
		{"unknown target", "SageMaker.CreateTrainingJob", `{}`, 400, "UnknownOperationException", "CreateTrainingJob"},
		{"unknown member", "SageMaker.CreateModel", `{"ModelName":"a","PrimaryContainer":{"Image":"x"},"Colour":1}`, 400, "ValidationException", "Colour"},
		{"missing name", "SageMaker.DescribeEndpoint", `{}`, 400, "ValidationException", "EndpointName is required"},
		{"missing image", "SageMaker.CreateModel", `{"ModelName":"a"}`, 400, "ValidationException", "PrimaryContainer"},
		{"missing variants", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c"}`, 400, "ValidationException", "ProductionVariants"},
		{"missing model", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"nope","InitialInstanceCount":1}]}`, 400, "ValidationException", "nope"},
		{"missing config", "SageMaker.CreateEndpoint", `{"EndpointName":"e","EndpointConfigName":"nope"}`, 400, "ValidationException", "nope"},
		{"missing endpoint", "SageMaker.UpdateEndpoint", `{"EndpointName":"e","EndpointConfigName":"c"}`, 400, "ValidationException", "Could not find endpoint"},
		{"bad name", "SageMaker.CreateEndpoint", `{"EndpointName":"-e-","EndpointConfigName":"c"}`, 400, "ValidationException", "EndpointName"},
		{"bad canary", "SageMaker.CreateEndpoint", `{"EndpointName":"e","EndpointConfigName":"c","DeploymentConfig":{"BlueGreenUpdatePolicy":{"TrafficRoutingConfiguration":{"Type":"CANARY","WaitIntervalInSeconds":1}}}}`, 400, "ValidationException", "CanarySize"},
		{"unsupported feature", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"m","InitialInstanceCount":1,"ServerlessConfig":{"MemorySizeInMB":2048,"MaxConcurrency":1}}]}`, 400, "ValidationException", "Kiln does not support"},
		{"too large", "SageMaker.CreateModel", `{"ModelName":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "ValidationException", "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", p.url+"/", strings.NewReader(tc.body))
			req.Header.Set("X-Amz-Target", tc.target)
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			b, _ := io.ReadAll(resp.Body)
			json.Unmarshal(b, &eb)
			if resp.StatusCode != tc.status || eb.Type != tc.code || resp.Header.Get("X-Amzn-ErrorType") != tc.code || !strings.Contains(eb.Message, tc.want) {
				t.Errorf("got %d %s (X-Amzn-ErrorType %q) %q, want %d %s with %q", resp.StatusCode, eb.Type, resp.Header.Get("X-Amzn-ErrorType"), eb.Message, tc.status, tc.code, tc.want)
			}
			if resp.Header.Get("X-Amzn-RequestId") == "" {
				t.Error("no x-amzn-RequestId")
			}
		})
	}
	// No operation at all is a 400 that says what Kiln serves here.
	resp, err := http.Post(p.url+"/", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "X-Amz-Target: SageMaker.") {
		t.Errorf("POST / without a target: %d %s", resp.StatusCode, b)
	}
	// Nothing was written.
	sm, _ := smClients(p.url, "AKIDANYTHING", "any-secret-will-do")
	ctx := context.Background()
	if out, err := sm.ListModels(ctx, &sagemaker.ListModelsInput{}); err != nil || len(out.Models) != 0 {
		t.Errorf("ListModels after bad requests: %v %v", out, err)
	}
	if out, err := sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{}); err != nil || len(out.EndpointConfigs) != 0 {
		t.Errorf("ListEndpointConfigs after bad requests: %v %v", out, err)
	}
}

// writeCredentials writes a credentials file of two profiles.
func writeCredentials(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credentials")
	const content = `# Kiln's access keys
[deployer]
aws_access_key_id = KILNDEPLOYER
aws_secret_access_key = deployer-secret-0123456789

[ci]
aws_access_key_id = KILNCI
aws_secret_access_key = ci-secret-abcdefghijklmnop
`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// With --credentials-file, every API authenticates: SigV4 for the AWS
// clients, SigV4 or a token from `kiln token` for the native API, and
// with --invoke-auth either for invocations. A secret access key is never
// a bearer token.
func TestSageMakerAuth(t *testing.T) {
	p := startKiln(t, "", "--credentials-file", writeCredentials(t), "--invoke-auth")
	ctx := context.Background()
	sm, _ := smClients(p.url, "KILNDEPLOYER", "deployer-secret-0123456789")

	must[*sagemaker.CreateModelOutput](t, "CreateModel")(sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName: aws.String("auth-m"), PrimaryContainer: &types.ContainerDefinition{Image: aws.String(kilnBin + " demo-model")},
	}))
	must[*sagemaker.CreateEndpointConfigOutput](t, "CreateEndpointConfig")(sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("auth-c"),
		ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("auth-m"), InitialInstanceCount: aws.Int32(1)}},
	}))
	must[*sagemaker.CreateEndpointOutput](t, "CreateEndpoint")(sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("auth"), EndpointConfigName: aws.String("auth-c")}))
	// The second profile's key works too.
	smCI, _ := smClients(p.url, "KILNCI", "ci-secret-abcdefghijklmnop")
	waitInServiceSDK(t, smCI, "auth", 60*time.Second)

	for _, tc := range []struct {
		name, id, secret, code string
	}{
		{"wrong secret", "KILNDEPLOYER", "not-the-deployer-secret", "InvalidSignatureException"},
		{"unknown key", "KILNNOBODY", "deployer-secret-0123456789", "UnrecognizedClientException"},
	} {
		bad, badRT := smClients(p.url, tc.id, tc.secret)
		if _, err := bad.ListModels(ctx, &sagemaker.ListModelsInput{}); awsErrorCode(err) != tc.code {
			t.Errorf("%s: ListModels: %v, want %s", tc.name, err, tc.code)
		}
		if _, err := badRT.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("auth"), Body: []byte(body), ContentType: aws.String("application/json")}); awsErrorCode(err) != tc.code {
			t.Errorf("%s: InvokeEndpoint: %v, want %s", tc.name, err, tc.code)
		}
	}

	// Unsigned requests are refused in each API's own error shape.
	req, _ := http.NewRequest("POST", p.url+"/", strings.NewReader(`{}`))
	req.Header.Set("X-Amz-Target", "SageMaker.ListModels")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned SageMaker request: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	r, err := p.invoke("auth", body)
	if err != nil || r.status != 403 || !strings.Contains(r.body, "MissingAuthenticationTokenException") {
		t.Errorf("unsigned invocation: %d %s %v", r.status, r.body, err)
	}
	// The first invocation on a connection is read by net/http, the next
	// ones by the gateway's own HTTP/1.1 path: each is checked.
	// Two clients share one connection: the good key's, then a wrong
	// secret's, then the good key's again.
	shared := &http.Client{Transport: awstest.Transport(&http.Transport{MaxIdleConnsPerHost: 1})}
	defer shared.CloseIdleConnections()
	runtimeClient := func(secret string) *sagemakerruntime.Client {
		return sagemakerruntime.New(sagemakerruntime.Options{BaseEndpoint: aws.String(p.url), Region: "us-east-1", HTTPClient: shared, RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider("KILNDEPLOYER", secret, "")})
	}
	good, wrong := runtimeClient("deployer-secret-0123456789"), runtimeClient("not-the-deployer-secret")
	for i, c := range []*sagemakerruntime.Client{good, good, wrong, good} {
		_, err := c.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("auth"), Body: []byte(body), ContentType: aws.String("application/json")})
		if c == wrong && awsErrorCode(err) != "InvalidSignatureException" || c == good && err != nil {
			t.Errorf("InvokeEndpoint %d on a shared connection: %v", i+1, err)
		}
	}
	// InvokeEndpointWithResponseStream, signed: the demo model's server-sent
	// events, one per row, in PayloadPart events.
	stream, err := good.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName: aws.String("auth"), Body: []byte(`{"instances": [[1, 2, 3, 4], [4, 3, 2, 1]]}`),
		ContentType: aws.String("application/json"), Accept: aws.String("text/event-stream")})
	if err != nil {
		t.Fatalf("InvokeEndpointWithResponseStream: %v", err)
	}
	var streamed strings.Builder
	for ev := range stream.GetStream().Events() {
		if part, ok := ev.(*rttypes.ResponseStreamMemberPayloadPart); ok {
			streamed.Write(part.Value.Bytes)
		}
	}
	if err := stream.GetStream().Err(); err != nil || strings.Count(streamed.String(), "data: ") != 2 ||
		aws.ToString(stream.ContentType) != "text/event-stream" {
		t.Errorf("response stream: %q, content type %q, err %v", streamed.String(), aws.ToString(stream.ContentType), err)
	}
	stream.GetStream().Close()

	ciClient := &client.Client{BaseURL: p.url, AccessKeyID: "KILNCI", SecretAccessKey: "ci-secret-abcdefghijklmnop"}
	ciToken, err := ciClient.MintToken(ctx, 600, "")
	if err != nil {
		t.Fatalf("mint a token: %v", err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i, tc := range []struct {
		header string
		status int
	}{
		{"Authorization: Bearer " + ciToken.Token + "\r\n", 200},
		{"", 403},
		{"Authorization: Bearer not-a-secret\r\n", 403},
		{"Authorization: Bearer deployer-secret-0123456789\r\n", 403},
		{"Authorization: Bearer " + ciToken.Token + "\r\n", 200},
	} {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "POST /endpoints/auth/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s",
			tc.header, len(body), body)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("invocation %d on one connection: %v", i+1, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || tc.status == 403 && res.Header.Get("X-Amzn-ErrorType") == "" {
			t.Errorf("invocation %d on one connection: %d %v %s, want %d", i+1, res.StatusCode, res.Header, b, tc.status)
		}
	}

	// The native API takes a token, never a secret access key.
	get := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", p.url+"/v1/endpoints/auth", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, b := get(""); status != 401 || !strings.Contains(b, `"unauthorized"`) {
		t.Errorf("native API without a token: %d %s", status, b)
	}
	if status, _ := get("KILNDEPLOYER"); status != 401 {
		t.Errorf("native API with the key ID as token: %d", status)
	}
	if status, b := get("ci-secret-abcdefghijklmnop"); status != 401 || !strings.Contains(b, "not accepted as a bearer token") {
		t.Errorf("native API with a secret as bearer token: %d %s", status, b)
	}
	if status, b := get(ciToken.Token); status != 200 || !strings.Contains(b, `"EndpointName":"auth"`) {
		t.Errorf("native API with a token: %d %s", status, b)
	}
	if ep, err := ciClient.GetEndpoint(ctx, "auth"); err != nil || ep.EndpointName != "auth" {
		t.Errorf("client.Client signing with SigV4: %v %v", ep, err)
	}
	if _, err := (&client.Client{BaseURL: p.url, Token: "deployer-secret-0123456789"}).GetEndpoint(ctx, "auth"); err == nil || !strings.Contains(err.Error(), "not a secret access key") {
		t.Errorf("client.Client given a secret as its token: %v, want it refused before sending", err)
	}
	if resp, err := http.Get(p.url + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz must stay open for probes: %v %v", resp, err)
	}

	must[*sagemaker.DeleteEndpointOutput](t, "DeleteEndpoint")(sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("auth")}))
	if err := sagemaker.NewEndpointDeletedWaiter(sm, func(o *sagemaker.EndpointDeletedWaiterOptions) { o.MinDelay, o.MaxDelay = time.Second, 2*time.Second }).
		Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("auth")}, 60*time.Second); err != nil {
		t.Errorf("EndpointDeleted waiter: %v", err)
	}
}

package sagemaker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
)

const (
	testKeyID  = "KILNTESTKEY01"
	testSecret = "kiln-test-secret-0123456789abcdef"
)

// testServer serves the AWS APIs over a memService, with the credentials
// given (none: no auth).
func testServer(t *testing.T, creds *api.Credentials) (*memService, *httptest.Server) {
	t.Helper()
	svc := newMemService()
	sm := &API{Service: svc, Logger: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(api.AWSHandler(sm, http.NotFoundHandler(), &api.Auth{Creds: creds}))
	t.Cleanup(srv.Close)
	return svc, srv
}

func testCreds(t testing.TB) *api.Credentials {
	t.Helper()
	c, err := api.LoadCredentials("", func(k string) string {
		return map[string]string{"KILN_ACCESS_KEY_ID": testKeyID, "KILN_SECRET_ACCESS_KEY": testSecret}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sdkClient(url, id, secret string) *sagemaker.Client {
	return sagemaker.New(sagemaker.Options{
		BaseEndpoint:     aws.String(url),
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(id, secret, ""),
		RetryMaxAttempts: 1,
	})
}

// apiCode returns the AWS error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func mustSucceed[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// The whole control-plane life cycle through the current Go SDK, signed.
func TestSageMakerSDKLifecycle(t *testing.T) {
	svc, srv := testServer(t, testCreds(t))
	sm := sdkClient(srv.URL, testKeyID, testSecret)
	ctx := context.Background()

	mo := mustSucceed[*sagemaker.CreateModelOutput](t, "CreateModel")(sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName: aws.String("m1"),
		PrimaryContainer: &types.ContainerDefinition{
			Image:        aws.String("/usr/bin/model-server --port 8080"),
			Environment:  map[string]string{"A": "1"},
			ModelDataUrl: aws.String("s3://bucket/model.tar.gz"),
		},
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/Any"),
		Tags:             []types.Tag{{Key: aws.String("team"), Value: aws.String("ml")}},
	}))
	if got, want := aws.ToString(mo.ModelArn), "arn:aws:sagemaker:us-east-1:000000000000:model/m1"; got != want {
		t.Errorf("ModelArn = %q, want %q", got, want)
	}
	dm := mustSucceed[*sagemaker.DescribeModelOutput](t, "DescribeModel")(sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("m1")}))
	if aws.ToString(dm.PrimaryContainer.Image) != "/usr/bin/model-server --port 8080" || dm.PrimaryContainer.Environment["A"] != "1" ||
		aws.ToString(dm.PrimaryContainer.ModelDataUrl) != "s3://bucket/model.tar.gz" || !dm.CreationTime.Equal(svc.models["m1"].CreationTime) {
		t.Errorf("DescribeModel = %+v, %+v", dm, dm.PrimaryContainer)
	}

	_, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("m1"), PrimaryContainer: &types.ContainerDefinition{Image: aws.String("x")}})
	if apiCode(err) != "ValidationException" || !strings.Contains(err.Error(), "Cannot create already existing model") {
		t.Errorf("second CreateModel: %v, want ValidationException Cannot create already existing model", err)
	}

	for _, name := range []string{"c1", "c2"} {
		mustSucceed[*sagemaker.CreateEndpointConfigOutput](t, "CreateEndpointConfig")(sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
			EndpointConfigName: aws.String(name),
			ProductionVariants: []types.ProductionVariant{{
				VariantName: aws.String("AllTraffic"), ModelName: aws.String("m1"),
				InitialInstanceCount: aws.Int32(4), InstanceType: types.ProductionVariantInstanceTypeMlM5Large,
				InitialVariantWeight: aws.Float32(1),
				RoutingConfig:        &types.ProductionVariantRoutingConfig{RoutingStrategy: types.RoutingStrategyLeastOutstandingRequests},
			}},
		}))
	}
	dc := mustSucceed[*sagemaker.DescribeEndpointConfigOutput](t, "DescribeEndpointConfig")(sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("c1")}))
	if len(dc.ProductionVariants) != 1 || aws.ToInt32(dc.ProductionVariants[0].InitialInstanceCount) != 4 ||
		dc.ProductionVariants[0].InstanceType != types.ProductionVariantInstanceTypeMlM5Large || aws.ToString(dc.EndpointConfigArn) != "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/c1" {
		t.Errorf("DescribeEndpointConfig = %+v", dc)
	}

	canary := &types.DeploymentConfig{
		BlueGreenUpdatePolicy: &types.BlueGreenUpdatePolicy{
			TrafficRoutingConfiguration: &types.TrafficRoutingConfig{
				Type:                  types.TrafficRoutingConfigTypeCanary,
				WaitIntervalInSeconds: aws.Int32(600),
				CanarySize:            &types.CapacitySize{Type: types.CapacitySizeTypeInstanceCount, Value: aws.Int32(1)},
			},
			TerminationWaitInSeconds:         aws.Int32(300),
			MaximumExecutionTimeoutInSeconds: aws.Int32(3600),
		},
		AutoRollbackConfiguration: &types.AutoRollbackConfig{Alarms: []types.Alarm{{AlarmName: aws.String("errors")}}},
	}
	eo := mustSucceed[*sagemaker.CreateEndpointOutput](t, "CreateEndpoint")(sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{
		EndpointName: aws.String("Ep1"), EndpointConfigName: aws.String("c1"),
	}))
	if got, want := aws.ToString(eo.EndpointArn), "arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep1"; got != want {
		t.Errorf("EndpointArn = %q, want %q (SageMaker lower-cases the name)", got, want)
	}
	de, err := sagemaker.NewEndpointInServiceWaiter(sm).WaitForOutput(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("Ep1")}, 10*time.Second)
	if err != nil {
		t.Fatalf("EndpointInService waiter: %v", err)
	}
	if len(de.ProductionVariants) != 1 {
		t.Fatalf("DescribeEndpoint variants = %+v", de.ProductionVariants)
	}
	v := de.ProductionVariants[0]
	if aws.ToString(v.VariantName) != "AllTraffic" || aws.ToInt32(v.CurrentInstanceCount) != 4 || aws.ToFloat32(v.CurrentWeight) != 1 ||
		len(v.DeployedImages) != 1 || aws.ToString(v.DeployedImages[0].SpecifiedImage) != "/usr/bin/model-server --port 8080" || v.DeployedImages[0].ResolutionTime == nil {
		t.Errorf("DescribeEndpoint variant = %+v", v)
	}
	if de.PendingDeploymentSummary != nil {
		t.Errorf("PendingDeploymentSummary = %+v on an endpoint in service", de.PendingDeploymentSummary)
	}

	// A canary update: DescribeEndpoint shows it pending.
	mustSucceed[*sagemaker.UpdateEndpointOutput](t, "UpdateEndpoint")(sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{
		EndpointName: aws.String("Ep1"), EndpointConfigName: aws.String("c2"), DeploymentConfig: canary,
		ExcludeRetainedVariantProperties: []types.VariantProperty{{VariantPropertyType: types.VariantPropertyTypeDesiredWeight}},
	}))
	de = mustSucceed[*sagemaker.DescribeEndpointOutput](t, "DescribeEndpoint")(sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("Ep1")}))
	if de.EndpointStatus != types.EndpointStatusUpdating {
		t.Errorf("EndpointStatus = %s, want Updating", de.EndpointStatus)
	}
	p := de.PendingDeploymentSummary
	if p == nil || aws.ToString(p.EndpointConfigName) != "c2" || p.StartTime == nil || len(p.ProductionVariants) != 1 ||
		p.ProductionVariants[0].InstanceType != types.ProductionVariantInstanceTypeMlM5Large ||
		len(p.ProductionVariants[0].VariantStatus) != 1 || p.ProductionVariants[0].VariantStatus[0].Status != types.VariantStatusCreating ||
		aws.ToString(p.ProductionVariants[0].VariantStatus[0].StatusMessage) != "Launching 4 instance(s)." {
		t.Errorf("PendingDeploymentSummary = %+v", p)
	}
	lc := de.LastDeploymentConfig
	if lc == nil || lc.BlueGreenUpdatePolicy == nil || lc.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.Type != types.TrafficRoutingConfigTypeCanary ||
		aws.ToInt32(lc.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.CanarySize.Value) != 1 ||
		aws.ToInt32(lc.BlueGreenUpdatePolicy.TerminationWaitInSeconds) != 300 || aws.ToString(lc.AutoRollbackConfiguration.Alarms[0].AlarmName) != "errors" {
		t.Errorf("LastDeploymentConfig = %+v", lc)
	}
	_, err = sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("Ep1"), EndpointConfigName: aws.String("c1")})
	if apiCode(err) != "ValidationException" || !strings.Contains(err.Error(), "Cannot update in-progress endpoint") {
		t.Errorf("UpdateEndpoint during an update: %v", err)
	}
	svc.setEndpoint("Ep1", func(ep *kiln.Endpoint) {
		ep.EndpointStatus, ep.Deployment, ep.EndpointConfigName = kiln.StatusInService, nil, "c2"
		ep.FailureReason = "Alarm errors went into ALARM; rolled back."
	})
	de = mustSucceed[*sagemaker.DescribeEndpointOutput](t, "DescribeEndpoint")(sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("Ep1")}))
	if de.PendingDeploymentSummary != nil || aws.ToString(de.FailureReason) != "Alarm errors went into ALARM; rolled back." {
		t.Errorf("after the update: pending %+v, FailureReason %q", de.PendingDeploymentSummary, aws.ToString(de.FailureReason))
	}

	mustSucceed[*sagemaker.UpdateEndpointWeightsAndCapacitiesOutput](t, "UpdateEndpointWeightsAndCapacities")(sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName: aws.String("Ep1"),
		DesiredWeightsAndCapacities: []types.DesiredWeightAndCapacity{
			{VariantName: aws.String("AllTraffic"), DesiredWeight: aws.Float32(0.5), DesiredInstanceCount: aws.Int32(2)},
		},
	}))
	de = mustSucceed[*sagemaker.DescribeEndpointOutput](t, "DescribeEndpoint")(sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("Ep1")}))
	if v := de.ProductionVariants[0]; aws.ToFloat32(v.DesiredWeight) != 0.5 || aws.ToInt32(v.DesiredInstanceCount) != 2 {
		t.Errorf("after UpdateEndpointWeightsAndCapacities: %+v", v)
	}

	mustSucceed[*sagemaker.DeleteEndpointOutput](t, "DeleteEndpoint")(sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("Ep1")}))
	if err := sagemaker.NewEndpointDeletedWaiter(sm).Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("Ep1")}, 10*time.Second); err != nil {
		t.Errorf("EndpointDeleted waiter: %v", err)
	}
	_, err = sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("Ep1")})
	if apiCode(err) != "ValidationException" || !strings.Contains(err.Error(), `Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep1"`) {
		t.Errorf("DescribeEndpoint after delete: %v", err)
	}
	_, err = sagemaker.NewEndpointInServiceWaiter(sm).WaitForOutput(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("Ep1")}, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "transitioned to Failure") {
		t.Errorf("EndpointInService waiter on a missing endpoint: %v, want a waiter failure", err)
	}
	mustSucceed[*sagemaker.DeleteEndpointConfigOutput](t, "DeleteEndpointConfig")(sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String("c1")}))
	mustSucceed[*sagemaker.DeleteModelOutput](t, "DeleteModel")(sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("m1")}))
	_, err = sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("m1")})
	if apiCode(err) != "ValidationException" || !strings.Contains(err.Error(), `Could not find model "m1"`) {
		t.Errorf("DescribeModel after delete: %v", err)
	}
}

// A failed endpoint fails the EndpointInService waiter at once.
func TestSageMakerWaiterFailed(t *testing.T) {
	svc, srv := testServer(t, nil)
	sm := sdkClient(srv.URL, "any", "anything-goes-without-creds")
	ctx := context.Background()
	svc.models["m"] = kiln.Model{ModelName: "m", PrimaryContainer: &kiln.ContainerDef{Image: "x"}}
	svc.configs["c"] = kiln.EndpointConfig{EndpointConfigName: "c", ProductionVariants: []kiln.ProductionVariant{{VariantName: "v", ModelName: "m", InitialInstanceCount: 1}}}
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("e"), EndpointConfigName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	svc.setEndpoint("e", func(ep *kiln.Endpoint) {
		ep.EndpointStatus, ep.FailureReason = kiln.StatusFailed, "no instance became healthy"
	})
	_, err := sagemaker.NewEndpointInServiceWaiter(sm).WaitForOutput(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("e")}, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "transitioned to Failure") {
		t.Errorf("EndpointInService waiter on a Failed endpoint: %v, want a waiter failure", err)
	}
}

func TestSageMakerListPaging(t *testing.T) {
	svc, srv := testServer(t, nil)
	sm := sdkClient(srv.URL, "any", "anything-goes-without-creds")
	ctx := context.Background()
	const n = 25
	svc.models["m"] = kiln.Model{ModelName: "m", PrimaryContainer: &kiln.ContainerDef{Image: "x"}}
	svc.configs["c"] = kiln.EndpointConfig{EndpointConfigName: "c", ProductionVariants: []kiln.ProductionVariant{{VariantName: "v", ModelName: "m", InitialInstanceCount: 1}}}
	for i := range n {
		// Creation order differs from name order.
		name := fmt.Sprintf("ep-%02d", (i*7)%n)
		if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String("c")}); err != nil {
			t.Fatal(err)
		}
	}
	svc.setEndpoint("ep-03", func(ep *kiln.Endpoint) { ep.EndpointStatus = kiln.StatusFailed })

	list := func(in *sagemaker.ListEndpointsInput) (names []string, pages int) {
		t.Helper()
		pg := sagemaker.NewListEndpointsPaginator(sm, in)
		for pg.HasMorePages() {
			out, err := pg.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListEndpoints: %v", err)
			}
			pages++
			for _, e := range out.Endpoints {
				names = append(names, aws.ToString(e.EndpointName))
			}
		}
		return names, pages
	}

	// Default: newest first, 10 a page.
	names, pages := list(&sagemaker.ListEndpointsInput{})
	if len(names) != n || pages != 3 {
		t.Fatalf("default listing: %d endpoints in %d pages, want %d in 3", len(names), pages, n)
	}
	if want := fmt.Sprintf("ep-%02d", ((n-1)*7)%n); names[0] != want {
		t.Errorf("newest first: got %s first, want %s", names[0], want)
	}
	names, pages = list(&sagemaker.ListEndpointsInput{SortBy: types.EndpointSortKeyName, SortOrder: types.OrderKeyAscending, MaxResults: aws.Int32(7)})
	if pages != 4 || names[0] != "ep-00" || names[24] != "ep-24" {
		t.Errorf("by name: %d pages, %v", pages, names)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("by name: %s before %s", names[i-1], names[i])
		}
	}
	names, _ = list(&sagemaker.ListEndpointsInput{NameContains: aws.String("EP-1")})
	if len(names) != 10 {
		t.Errorf("NameContains EP-1: %v, want the 10 names ep-1x", names)
	}
	names, _ = list(&sagemaker.ListEndpointsInput{StatusEquals: types.EndpointStatusFailed})
	if len(names) != 1 || names[0] != "ep-03" {
		t.Errorf("StatusEquals Failed: %v", names)
	}
	names, _ = list(&sagemaker.ListEndpointsInput{SortBy: types.EndpointSortKeyStatus, SortOrder: types.OrderKeyAscending, MaxResults: aws.Int32(100)})
	if names[0] != "ep-03" { // Failed sorts before InService
		t.Errorf("by status: %v", names)
	}
	cut := svc.eps["ep-00"].CreationTime // the first created
	names, _ = list(&sagemaker.ListEndpointsInput{CreationTimeAfter: aws.Time(cut), CreationTimeBefore: aws.Time(cut.Add(3 * time.Second))})
	if len(names) != 2 {
		t.Errorf("CreationTimeAfter/Before: %v, want the 2nd and 3rd created", names)
	}

	// Deleting what a page returned does not disturb the next page.
	out, err := sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{SortBy: types.EndpointSortKeyName, SortOrder: types.OrderKeyAscending, MaxResults: aws.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range out.Endpoints {
		sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: e.EndpointName})
	}
	out, err = sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{SortBy: types.EndpointSortKeyName, SortOrder: types.OrderKeyAscending, MaxResults: aws.Int32(5), NextToken: out.NextToken})
	if err != nil || aws.ToString(out.Endpoints[0].EndpointName) != "ep-05" {
		t.Errorf("next page after deleting the first: %v %v", out, err)
	}

	for _, tc := range []struct {
		in   *sagemaker.ListEndpointsInput
		want string
	}{
		{&sagemaker.ListEndpointsInput{MaxResults: aws.Int32(0)}, "MaxResults"},
		{&sagemaker.ListEndpointsInput{MaxResults: aws.Int32(101)}, "MaxResults"},
		{&sagemaker.ListEndpointsInput{NextToken: aws.String("garbage")}, "NextToken"},
		{&sagemaker.ListEndpointsInput{NextToken: out.NextToken}, "NextToken"}, // made for another SortBy
		{&sagemaker.ListEndpointsInput{SortBy: "Colour"}, "SortBy"},
		{&sagemaker.ListEndpointsInput{StatusEquals: "Happy"}, "StatusEquals"},
		{&sagemaker.ListEndpointsInput{NameContains: aws.String("a b")}, "NameContains"},
	} {
		_, err := sm.ListEndpoints(ctx, tc.in)
		if apiCode(err) != "ValidationException" || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ListEndpoints(%+v): %v, want ValidationException naming %s", tc.in, err, tc.want)
		}
	}

	// ListModels and ListEndpointConfigs page alike.
	for i := range 12 {
		sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(fmt.Sprintf("model-%02d", i)), PrimaryContainer: &types.ContainerDefinition{Image: aws.String("x")}})
		sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String(fmt.Sprintf("config-%02d", i)),
			ProductionVariants: []types.ProductionVariant{{VariantName: aws.String("v"), ModelName: aws.String("m"), InitialInstanceCount: aws.Int32(1)}}})
	}
	var models []string
	for pg := sagemaker.NewListModelsPaginator(sm, &sagemaker.ListModelsInput{SortBy: types.ModelSortKeyName, SortOrder: types.OrderKeyAscending, MaxResults: aws.Int32(5)}); pg.HasMorePages(); {
		out, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Models {
			models = append(models, aws.ToString(m.ModelName))
		}
	}
	if len(models) != 13 || models[0] != "m" && models[0] != "model-00" {
		t.Errorf("ListModels: %v", models)
	}
	var configs []string
	for pg := sagemaker.NewListEndpointConfigsPaginator(sm, &sagemaker.ListEndpointConfigsInput{NameContains: aws.String("config")}); pg.HasMorePages(); {
		out, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range out.EndpointConfigs {
			configs = append(configs, aws.ToString(c.EndpointConfigName))
		}
	}
	if len(configs) != 12 || configs[0] != "config-11" {
		t.Errorf("ListEndpointConfigs newest first: %v", configs)
	}
}

// rawCall posts body to the SageMaker API with target and returns the
// status, the error code and message (if any), and the headers.
func rawCall(t *testing.T, url, target, body string) (int, string, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	json.Unmarshal(b, &eb)
	if resp.StatusCode != 200 && (eb.Type == "" || eb.Type != resp.Header.Get("X-Amzn-ErrorType")) {
		t.Errorf("%s %s: error body %s with X-Amzn-ErrorType %q: want __type and the header to agree", target, body, b, resp.Header.Get("X-Amzn-ErrorType"))
	}
	return resp.StatusCode, eb.Type, eb.Message, resp.Header
}

func TestSageMakerBadInput(t *testing.T) {
	svc, srv := testServer(t, nil)
	svc.models["m"] = kiln.Model{ModelName: "m", PrimaryContainer: &kiln.ContainerDef{Image: "x"}}
	const variant = `{"VariantName":"v","ModelName":"m","InitialInstanceCount":1`
	cases := []struct {
		name, target, body string
		status             int
		code, want         string
	}{
		{"malformed JSON", "SageMaker.CreateModel", `{"ModelName": "a",`, 400, "SerializationException", "truncated"},
		{"not JSON", "SageMaker.CreateModel", `ModelName=a`, 400, "SerializationException", "not valid JSON"},
		{"trailing data", "SageMaker.CreateModel", `{"ModelName": "a"} {}`, 400, "SerializationException", "after"},
		{"array body", "SageMaker.CreateModel", `[]`, 400, "SerializationException", "must be an object"},
		{"wrong type", "SageMaker.CreateModel", `{"ModelName": 5}`, 400, "SerializationException", "ModelName must be a string"},
		{"wrong nested type", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","InitialInstanceCount":"1"}]}`, 400, "SerializationException", "InitialInstanceCount must be an integer"},
		{"fraction for integer", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","InitialInstanceCount":1.5}]}`, 400, "SerializationException", "InitialInstanceCount"},
		{"bad timestamp", "SageMaker.ListEndpoints", `{"CreationTimeAfter": "yesterday"}`, 400, "SerializationException", "timestamp"},
		{"huge timestamp", "SageMaker.ListEndpoints", `{"CreationTimeAfter": 1e300}`, 400, "SerializationException", "out of range"},
		{"ignored member of the wrong type", "SageMaker.CreateModel", `{"ModelName":"a","PrimaryContainer":{"Image":"x","ImageConfig":"Vpc"}}`, 400, "SerializationException", "ImageConfig"},
		{"unknown member", "SageMaker.CreateModel", `{"ModelName": "a", "Colour": 1}`, 400, "ValidationException", `"Colour"`},
		{"unknown target", "SageMaker.CreateTrainingJob", `{}`, 400, "UnknownOperationException", "CreateTrainingJob"},
		{"missing name", "SageMaker.DescribeEndpoint", `{}`, 400, "ValidationException", "EndpointName is required"},
		{"null name", "SageMaker.DeleteModel", `{"ModelName": null}`, 400, "ValidationException", "ModelName is required"},
		{"bad name", "SageMaker.DescribeEndpoint", `{"EndpointName": "a_b"}`, 400, "ValidationException", "EndpointName"},
		{"missing image", "SageMaker.CreateModel", `{"ModelName": "a"}`, 400, "ValidationException", "PrimaryContainer"},
		{"empty body", "SageMaker.CreateModel", ``, 400, "ValidationException", "ModelName is required"},
		{"no variants", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[]}`, 400, "ValidationException", "ProductionVariants"},
		{"missing model", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"nope","InitialInstanceCount":1}]}`, 400, "ValidationException", `Could not find model "nope"`},
		{"missing config", "SageMaker.CreateEndpoint", `{"EndpointName":"e","EndpointConfigName":"nope"}`, 400, "ValidationException", "Could not find endpoint configuration"},
		{"missing endpoint", "SageMaker.DeleteEndpoint", `{"EndpointName":"nope"}`, 400, "ValidationException", "Could not find endpoint"},
		{"bad deployment config", "SageMaker.CreateEndpoint", `{"EndpointName":"e","EndpointConfigName":"c","DeploymentConfig":{"BlueGreenUpdatePolicy":{"TrafficRoutingConfiguration":{"Type":"SIDEWAYS"}}}}`, 400, "ValidationException", "SIDEWAYS"},
		{"unknown deployment member", "SageMaker.UpdateEndpoint", `{"EndpointName":"e","EndpointConfigName":"c","DeploymentConfig":{"Speed":1}}`, 400, "ValidationException", `"Speed"`},
		{"data capture", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[` + variant + `}],"DataCaptureConfig":{"InitialSamplingPercentage":1}}`, 400, "ValidationException", "Kiln does not support DataCaptureConfig"},
		{"async", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[` + variant + `}],"AsyncInferenceConfig":{}}`, 400, "ValidationException", "AsyncInferenceConfig"},
		{"shadow", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[` + variant + `}],"ShadowProductionVariants":[` + variant + `}]}`, 400, "ValidationException", "ShadowProductionVariants"},
		{"serverless", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[` + variant + `,"ServerlessConfig":{"MemorySizeInMB":2048,"MaxConcurrency":1}}]}`, 400, "ValidationException", "ProductionVariants[0].ServerlessConfig"},
		{"random routing", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[` + variant + `,"RoutingConfig":{"RoutingStrategy":"RANDOM"}}]}`, 400, "ValidationException", "RANDOM"},
		{"vpc", "SageMaker.CreateModel", `{"ModelName":"a","PrimaryContainer":{"Image":"x"},"VpcConfig":{"Subnets":["s"],"SecurityGroupIds":["g"]}}`, 400, "ValidationException", "VpcConfig"},
		{"network isolation", "SageMaker.CreateModel", `{"ModelName":"a","PrimaryContainer":{"Image":"x"},"EnableNetworkIsolation":true}`, 400, "ValidationException", "EnableNetworkIsolation"},
		{"multi-model", "SageMaker.CreateModel", `{"ModelName":"a","PrimaryContainer":{"Image":"x","Mode":"MultiModel"}}`, 400, "ValidationException", "MultiModel"},
		{"pipeline", "SageMaker.CreateModel", `{"ModelName":"a","Containers":[{"Image":"x"}]}`, 400, "ValidationException", "Containers"},
		{"serverless weights", "SageMaker.UpdateEndpointWeightsAndCapacities", `{"EndpointName":"e","DesiredWeightsAndCapacities":[{"VariantName":"v","ServerlessUpdateConfig":{}}]}`, 400, "ValidationException", "ServerlessUpdateConfig"},
		{"too large", "SageMaker.CreateModel", `{"ModelName":"` + strings.Repeat("a", api.MaxRequestBody) + `"}`, 413, "ValidationException", "larger than"},

		// Harmless members are accepted and ignored.
		{"ignored members", "SageMaker.CreateModel", `{"ModelName":"ok","PrimaryContainer":{"Image":"x","ContainerHostname":"h","ImageConfig":{"RepositoryAccessMode":"Platform"},"Mode":"SingleModel"},"EnableNetworkIsolation":false}`, 200, "", ""},
		{"ignored variant members", "SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"ok","ProductionVariants":[` + variant + `,"VolumeSizeInGB":30,"ModelDataDownloadTimeoutInSeconds":600,"EnableSSMAccess":false,"CoreDumpConfig":{"DestinationS3Uri":"s3://b/"}}],"MetricsConfig":{"EnableEnhancedMetrics":true},"ExecutionRoleArn":"arn:aws:iam::000000000000:role/r"}`, 200, "", ""},
		{"empty list", "SageMaker.ListModels", ``, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code, msg, h := rawCall(t, srv.URL, tc.target, tc.body)
			if status != tc.status || code != tc.code || !strings.Contains(msg, tc.want) {
				t.Errorf("got %d %s %q, want %d %s with %q", status, code, msg, tc.status, tc.code, tc.want)
			}
			if h.Get("X-Amzn-RequestId") == "" {
				t.Error("no x-amzn-RequestId")
			}
			if tc.status != 200 && h.Get("Content-Type") != "application/x-amz-json-1.1" {
				t.Errorf("Content-Type = %q", h.Get("Content-Type"))
			}
		})
	}
	if len(svc.eps) != 0 || len(svc.configs) != 1 || len(svc.models) != 2 {
		t.Errorf("bad requests wrote records: %d endpoints, %d configs, %d models", len(svc.eps), len(svc.configs), len(svc.models))
	}
}

func TestSageMakerInternalError(t *testing.T) {
	svc := newMemService()
	svc.failWith = errors.New("disk on fire")
	var logs bytes.Buffer
	sm := &API{Service: svc, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	srv := httptest.NewServer(sm)
	defer srv.Close()
	status, code, msg, _ := rawCall(t, srv.URL, "SageMaker.ListModels", `{}`)
	if status != 500 || code != "InternalFailure" || strings.Contains(msg, "fire") {
		t.Errorf("got %d %s %q, want 500 InternalFailure without the internal detail", status, code, msg)
	}
	if !strings.Contains(logs.String(), "disk on fire") {
		t.Errorf("internal error not logged: %q", logs.String())
	}
}

func TestEpochTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{`1767323045`, time.Unix(1767323045, 0)},
		{`1767323045.123`, time.Unix(1767323045, 123e6)},
		{`"2026-01-02T03:04:05Z"`, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{`"1767323045.5"`, time.Unix(1767323045, 5e8)},
	} {
		var e epochTime
		if err := json.Unmarshal([]byte(tc.in), &e); err != nil || !time.Time(e).Equal(tc.want) {
			t.Errorf("decode %s = %v, %v; want %v", tc.in, time.Time(e), err, tc.want)
		}
	}
	b, _ := json.Marshal(epochTime(time.Unix(1767323045, 123456789)))
	if string(b) != "1767323045.123" {
		t.Errorf("encode = %s, want 1767323045.123", b)
	}
	b, _ = json.Marshal(epochTime(time.Unix(1767323045, 0)))
	if string(b) != "1767323045" {
		t.Errorf("encode = %s, want 1767323045", b)
	}
}

// FuzzSageMakerRequest: no body and target make the handler panic or
// answer 500, and every error has the protocol's shape.
func FuzzSageMakerRequest(f *testing.F) {
	for _, op := range Operations() {
		f.Add("SageMaker."+op, `{}`)
	}
	f.Add("SageMaker.CreateModel", `{"ModelName":"m","PrimaryContainer":{"Image":"x","Environment":{"A":"1"}},"Tags":[{"Key":"k","Value":"v"}]}`)
	f.Add("SageMaker.CreateEndpointConfig", `{"EndpointConfigName":"c","ProductionVariants":[{"VariantName":"v","ModelName":"m","InitialInstanceCount":2,"InitialVariantWeight":0.5}]}`)
	f.Add("SageMaker.CreateEndpoint", `{"EndpointName":"e","EndpointConfigName":"c","DeploymentConfig":{"BlueGreenUpdatePolicy":{"TrafficRoutingConfiguration":{"Type":"LINEAR","WaitIntervalInSeconds":1,"LinearStepSize":{"Type":"CAPACITY_PERCENT","Value":20}}}}}`)
	f.Add("SageMaker.UpdateEndpoint", `{"EndpointName":"e","EndpointConfigName":"c","RetainAllVariantProperties":true,"ExcludeRetainedVariantProperties":[{"VariantPropertyType":"DesiredWeight"}]}`)
	f.Add("SageMaker.UpdateEndpointWeightsAndCapacities", `{"EndpointName":"e","DesiredWeightsAndCapacities":[{"VariantName":"v","DesiredWeight":2}]}`)
	f.Add("SageMaker.ListEndpoints", `{"SortBy":"Status","SortOrder":"Ascending","MaxResults":1,"NextToken":"eyJiIjoiU3RhdHVzIn0","CreationTimeAfter":1.5}`)
	f.Add("SageMaker.DescribeEndpoint", `{"EndpointName":"e"}`)
	f.Add("SageMaker.AddTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:000000000000:endpoint/e","Tags":[{"Key":"k","Value":"v"}]}`)
	f.Add("SageMaker.ListTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:000000000000:model/m","MaxResults":50}`)
	f.Add("SageMaker.DeleteTags", `{"ResourceArn":"arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/c","TagKeys":["k"]}`)
	f.Add("SageMaker.Nope", `{"a":[1,{"b":null}]}`)
	f.Add("", `{`)

	svc := newMemService()
	sm := &API{Service: svc, Logger: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, target, body string) {
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		rec := httptest.NewRecorder()
		sm.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", target, body, rec.Code, rec.Body)
		}
		if rec.Header().Get("X-Amzn-RequestId") == "" {
			t.Fatal("no x-amzn-RequestId")
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: response is not JSON: %s", target, body, rec.Body)
		}
		if rec.Code != 200 {
			var eb struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			json.Unmarshal(rec.Body.Bytes(), &eb)
			if eb.Type == "" || eb.Message == "" || rec.Header().Get("X-Amzn-ErrorType") != eb.Type {
				t.Fatalf("%s %q: error without its shape: %s", target, body, rec.Body)
			}
		}
	})
}

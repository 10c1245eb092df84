package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requirePython skips the test when python3 cannot import module, unless
// KILN_REQUIRE_SERVERS=1 says the machine must have it.
func requirePython(t *testing.T, module string) {
	t.Helper()
	if out, err := exec.Command("python3", "-c", "import "+module).CombinedOutput(); err != nil {
		if os.Getenv("KILN_REQUIRE_SERVERS") == "1" {
			t.Fatalf("python3 cannot import %s (KILN_REQUIRE_SERVERS=1): %v\n%s", module, err, out)
		}
		t.Skipf("python3 cannot import %s: %v", module, err)
	}
}

// awsEnv is a clean environment for an AWS client process: no AWS settings
// from the machine running the tests, no configuration files, no instance
// metadata lookups, and the given credentials and settings.
func awsEnv(t *testing.T, keyID, secret string, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	dir := t.TempDir()
	env = append(env,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ACCESS_KEY_ID="+keyID,
		"AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_DEFAULT_REGION=us-east-1",
	)
	return append(env, extra...)
}

// boto3 runs the SageMaker life cycle of testdata/boto3_lifecycle.py: models,
// configs, an endpoint and its waiters, invocations with typed errors,
// paging, a canary update seen pending, and deletion. Once against an open
// Kiln, once against one with credentials and signed invocations.
func TestBoto3Lifecycle(t *testing.T) {
	requirePython(t, "boto3")
	for _, tc := range []struct {
		name        string
		args        []string
		keyID, key  string
		wantRefused bool
	}{
		{"open", nil, "AKIDANYTHING", "any-secret-will-do", false},
		{"with credentials", []string{"--credentials-file", writeCredentials(t), "--invoke-auth"}, "KILNCI", "ci-secret-abcdefghijklmnop", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startKiln(t, "", tc.args...)
			cmd := exec.Command("python3", "testdata/boto3_lifecycle.py", p.url, kilnBin, "boto")
			cmd.Env = awsEnv(t, tc.keyID, tc.key, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME="+p.url)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
				t.Fatalf("boto3 life cycle: %v\n%s", err, out)
			}
		})
	}
}

// The AWS CLI (botocore underneath, whichever major version is installed)
// against a Kiln with credentials, the endpoint URL from the environment
// for sagemaker (newer CLIs read it there). TestDocWalkthroughs runs
// docs/aws.md's own commands.
func TestAWSCLISageMaker(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		if os.Getenv("KILN_REQUIRE_SERVERS") == "1" {
			t.Fatalf("the AWS CLI is not installed (KILN_REQUIRE_SERVERS=1)")
		}
		t.Skip("the AWS CLI is not installed")
	}
	p := startKiln(t, "", "--credentials-file", writeCredentials(t))
	dir := t.TempDir()
	// The URL comes from the environment for sagemaker and from
	// --endpoint-url for sagemaker-runtime: the docs show both.
	env := awsEnv(t, "KILNDEPLOYER", "deployer-secret-0123456789", "AWS_ENDPOINT_URL_SAGEMAKER="+p.url)
	aws := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("aws", args...)
		cmd.Env, cmd.Dir = env, dir
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("aws %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	container, _ := json.Marshal(map[string]any{"Image": kilnBin + " demo-model", "Environment": map[string]string{"KILN_DEMO_VERSION": "v1"}})
	aws("sagemaker", "create-model", "--model-name", "demo-v1", "--primary-container", string(container))
	aws("sagemaker", "create-endpoint-config", "--endpoint-config-name", "demo-v1",
		"--production-variants", "VariantName=AllTraffic,ModelName=demo-v1,InitialInstanceCount=1,InstanceType=ml.m5.large")
	aws("sagemaker", "create-endpoint", "--endpoint-name", "demo", "--endpoint-config-name", "demo-v1")
	start := time.Now()
	aws("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", "demo")
	t.Logf("aws sagemaker wait endpoint-in-service took %v", time.Since(start).Round(time.Second))
	var desc struct{ EndpointStatus string }
	if err := json.Unmarshal([]byte(aws("sagemaker", "describe-endpoint", "--endpoint-name", "demo")), &desc); err != nil || desc.EndpointStatus != "InService" {
		t.Errorf("describe-endpoint: %+v %v", desc, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "payload.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	meta := aws("sagemaker-runtime", "invoke-endpoint", "--endpoint-url", p.url, "--endpoint-name", "demo",
		"--content-type", "application/json", "--body", "fileb://payload.json", "out.json")
	answer, _ := os.ReadFile(filepath.Join(dir, "out.json"))
	if !strings.Contains(meta, `"InvokedProductionVariant": "AllTraffic"`) || !strings.Contains(string(answer), `"model_version":"v1"`) {
		t.Errorf("invoke-endpoint printed %s and wrote %s", meta, answer)
	}
	aws("sagemaker", "delete-endpoint", "--endpoint-name", "demo")
	aws("sagemaker", "wait", "endpoint-deleted", "--endpoint-name", "demo")
}

package sagemaker

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// botocore signs by its own rules (which headers, how the path is
// encoded); Kiln must accept what it signs. This drives the real boto3
// against the SageMaker API.
func TestSigV4Botocore(t *testing.T) {
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		t.Skip("python3 with boto3 is not available")
	}
	svc, srv := testServer(t, testCreds(t))
	_ = svc
	script := `
import sys, json, boto3, botocore
url, key, secret = sys.argv[1:4]
def client(secret):
    return boto3.client("sagemaker", endpoint_url=url, region_name="eu-west-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}))
sm = client(secret)
sm.create_model(ModelName="m1", PrimaryContainer={"Image": "srv --x 1", "Environment": {"K": "v w"}})
out = {"models": [m["ModelName"] for m in sm.list_models()["Models"]]}
try:
    sm.describe_endpoint(EndpointName="nope")
except botocore.exceptions.ClientError as e:
    out["missing"] = e.response["Error"]["Code"]
try:
    client("wrong-secret-wrong-secret").list_models()
except botocore.exceptions.ClientError as e:
    out["wrong_secret"] = e.response["Error"]["Code"]
print(json.dumps(out))
`
	out, err := exec.Command("python3", "-c", script, srv.URL, testKeyID, testSecret).CombinedOutput()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	var got struct {
		Models      []string `json:"models"`
		Missing     string   `json:"missing"`
		WrongSecret string   `json:"wrong_secret"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("boto3 printed %s", out)
	}
	if len(got.Models) != 1 || got.Models[0] != "m1" || got.Missing != "ValidationException" || got.WrongSecret != "InvalidSignatureException" {
		t.Errorf("boto3 saw %+v", got)
	}
}

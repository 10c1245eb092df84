package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kiln-serve/kiln"
)

// sageMaker calls one SageMaker operation with a raw JSON body, signed, and
// returns the raw JSON answer: what SDKs would drop (Kiln's own fields) is
// still there.
func (p *kilnProc) sageMaker(op, body string) string {
	p.t.Helper()
	req, err := http.NewRequest("POST", p.url+"/", strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "SageMaker."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "kiln", SecretAccessKey: "kiln-local-secret"}, req, hash, "sagemaker", "us-east-1", time.Now()); err != nil {
		p.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		p.t.Fatalf("SageMaker.%s: %d %s", op, resp.StatusCode, b)
	}
	return string(b)
}

// waitDeployed waits until the endpoint's update ended, whatever its
// outcome, and returns the record.
func (p *kilnProc) waitDeployed(name string, timeout time.Duration) kiln.Endpoint {
	p.t.Helper()
	waitFor(p.t, 5*time.Second, "the update of "+name+" to start", func() bool { return p.endpoint(name).Deployment != nil })
	var ep kiln.Endpoint
	waitFor(p.t, timeout, "the update of "+name+" to end", func() bool {
		ep = p.endpoint(name)
		return ep.Deployment == nil
	})
	return ep
}

// No promotion without evidence, through the real binary: a model that
// fails every request, deployed with no traffic, is promoted by an alarm
// that watched nothing (the endpoint says so loudly) unless the deployment
// requires requests on the new fleet; then it waits for them and rolls
// back when they do not come. With traffic, a good model is promoted.
func TestEvidenceBeforePromotion(t *testing.T) {
	p := startKiln(t, "")
	p.applyYAML(demoYAML("ev", 2))
	p.waitInService("ev", 30*time.Second)
	p.fiveXX("ev-5xx", "ev")

	t.Run("no traffic, --min-requests 5: demo-bad not promoted", func(t *testing.T) {
		p.mustCLI("deploy", "ev", "--config", "ev-bad", "--canary", "50%", "--bake", "2s", "--alarm", "ev-5xx",
			"--min-requests", "5", "--evidence-timeout", "6s")
		// While it waits, kiln status and DescribeEndpoint say what for.
		waitFor(t, 30*time.Second, "the bake to wait for requests", func() bool {
			return strings.Contains(p.mustCLI("status", "ev"), "waiting for the new fleet to answer at least 5 requests")
		})
		if out := p.sageMaker("DescribeEndpoint", `{"EndpointName": "ev"}`); !strings.Contains(out, "waiting for the new fleet to answer at least 5 requests") {
			t.Errorf("DescribeEndpoint while the bake waits does not say what for:\n%s", out)
		}
		ep := p.waitDeployed("ev", 60*time.Second)
		if ep.EndpointStatus != kiln.StatusInService || ep.EndpointConfigName != "ev-v1" {
			t.Fatalf("after the update: %s on %s, want InService on ev-v1", ep.EndpointStatus, ep.EndpointConfigName)
		}
		if want := "the new fleet answered 0 of the 5 requests the bake of step 1 needs (MinRequestsPerBake) within EvidenceTimeoutInSeconds (6 seconds)"; !strings.Contains(ep.FailureReason, want) {
			t.Errorf("FailureReason %q, want it to contain %q", ep.FailureReason, want)
		}
	})

	t.Run("no traffic, kiln deploy's default with --alarm: 1 request needed", func(t *testing.T) {
		p.mustCLI("deploy", "ev", "--config", "ev-bad", "--canary", "50%", "--bake", "1s", "--alarm", "ev-5xx", "--evidence-timeout", "3s")
		ep := p.waitDeployed("ev", 60*time.Second)
		if ep.EndpointConfigName != "ev-v1" || !strings.Contains(ep.FailureReason, "answered 0 of the 1 requests") {
			t.Fatalf("after the update: on %s, FailureReason %q; want ev-v1, and 0 of the 1 requests named", ep.EndpointConfigName, ep.FailureReason)
		}
	})

	t.Run("with traffic, --min-requests 5: a good model is promoted", func(t *testing.T) {
		g := startLoad(p, "ev", 1, 20*time.Millisecond)
		defer g.halt()
		p.mustCLI("deploy", "ev", "--config", "ev-v2", "--canary", "50%", "--bake", "2s", "--alarm", "ev-5xx",
			"--min-requests", "5", "--evidence-timeout", "30s")
		ep := p.waitDeployed("ev", 60*time.Second)
		if ep.EndpointConfigName != "ev-v2" || ep.FailureReason != "" || ep.EvidenceWarning != "" {
			t.Fatalf("after the update: on %s, FailureReason %q, EvidenceWarning %q; want ev-v2 and neither", ep.EndpointConfigName, ep.FailureReason, ep.EvidenceWarning)
		}
	})

	t.Run("through SageMaker's API: the endpoint's tag requires evidence", func(t *testing.T) {
		arn := p.endpoint("ev").EndpointArn
		p.sageMaker("AddTags", `{"ResourceArn": "`+arn+`", "Tags": [{"Key": "kiln:MinRequestsPerBake", "Value": "5"}]}`)
		p.sageMaker("UpdateEndpoint", `{"EndpointName": "ev", "EndpointConfigName": "ev-v1", "DeploymentConfig": {
			"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}, "WaitIntervalInSeconds": 1}},
			"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "ev-5xx"}]}}}`)
		waitFor(t, 30*time.Second, "the bake to wait for requests", func() bool {
			return strings.Contains(p.mustCLI("status", "ev"), "waiting for the new fleet to answer at least 5 requests")
		})
		// Requests come: the good model is promoted.
		g := startLoad(p, "ev", 1, 20*time.Millisecond)
		defer g.halt()
		ep := p.waitDeployed("ev", 60*time.Second)
		if ep.EndpointConfigName != "ev-v1" || ep.FailureReason != "" || ep.EvidenceWarning != "" {
			t.Fatalf("after the update: on %s, FailureReason %q, EvidenceWarning %q; want ev-v1 and neither", ep.EndpointConfigName, ep.FailureReason, ep.EvidenceWarning)
		}
		p.sageMaker("DeleteTags", `{"ResourceArn": "`+arn+`", "TagKeys": ["kiln:MinRequestsPerBake"]}`)
	})
	t.Run("no traffic, evidence not required: promoted, and said loudly", func(t *testing.T) {
		p.mustCLI("deploy", "ev", "--config", "ev-bad", "--canary", "50%", "--bake", "2s", "--alarm", "ev-5xx", "--min-requests", "0")
		ep := p.waitDeployed("ev", 60*time.Second)
		if ep.EndpointConfigName != "ev-bad" {
			t.Fatalf("after the update: on %s (%s); want ev-bad promoted, as asked", ep.EndpointConfigName, ep.FailureReason)
		}
		const warning = "Promoted without evidence: the new fleet answered no request during the bake of step(s) 1"
		if !strings.Contains(ep.EvidenceWarning, warning) {
			t.Errorf("EvidenceWarning %q, want it to contain %q", ep.EvidenceWarning, warning)
		}
		if out := p.mustCLI("status", "ev"); !strings.Contains(out, "WARNING: "+warning) {
			t.Errorf("kiln status does not warn:\n%s", out)
		}
		if out := p.mustCLI("describe", "endpoint", "ev"); !strings.Contains(out, warning) {
			t.Errorf("kiln describe endpoint does not warn:\n%s", out)
		}
		if out := p.mustCLI("history", "ev"); !strings.Contains(out, "No evidence: the bake of step 1 ended with no request answered by the new fleet") {
			t.Errorf("kiln history does not say the bake saw nothing:\n%s", out)
		}
		var desc struct{ EvidenceWarning string }
		if err := json.Unmarshal([]byte(p.sageMaker("DescribeEndpoint", `{"EndpointName": "ev"}`)), &desc); err != nil || !strings.Contains(desc.EvidenceWarning, warning) {
			t.Errorf("DescribeEndpoint's EvidenceWarning %q (%v), want it to contain %q", desc.EvidenceWarning, err, warning)
		}
		// The history the dashboard reads says it too.
		evs, err := p.client.EndpointHistory(context.Background(), "ev")
		if err != nil {
			t.Fatal(err)
		}
		if last := evs[len(evs)-1]; last.Phase != kiln.PhaseCompleted || !strings.Contains(last.Message, warning) {
			t.Errorf("last history event %s %q, want Completed with the warning", last.Phase, last.Message)
		}
	})

}

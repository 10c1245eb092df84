package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// A judge alarm rolls back a canary of a failing model with its evidence in
// the FailureReason, then lets a healthy canary through: its verdict about
// one deployment does not stand against the next.
func TestJudgeEndToEnd(t *testing.T) {
	p := startKiln(t, "")
	p.applyYAML(demoYAML("jd", 2))
	p.waitInService("jd", 30*time.Second)
	out := p.mustCLI("alarms", "put-judge", "jd-judge", "--endpoint", "jd")
	t.Log(out)
	g := startLoad(p, "jd", 2, 2*time.Millisecond)
	p.mustCLI("deploy", "jd", "--config", "jd-bad", "--canary", "50%", "--bake", "60s", "--alarm", "jd-judge")
	p.waitInService("jd", 60*time.Second)
	ep := p.endpoint("jd")
	t.Logf("after bad: config %s, reason %q", ep.EndpointConfigName, ep.FailureReason)
	if ep.EndpointConfigName != "jd-v1" || !strings.Contains(ep.FailureReason, `alarm "jd-judge" is in ALARM: Judge: the new fleet`) {
		t.Fatalf("bad deployment not rolled back by the judge: %s %q", ep.EndpointConfigName, ep.FailureReason)
	}
	_, fails, _ := g.counts()
	t.Logf("failed requests: %d", fails)
	time.Sleep(1500 * time.Millisecond)
	t.Log(p.mustCLI("alarms", "get"))
	start := time.Now()
	p.mustCLI("deploy", "jd", "--config", "jd-v2", "--canary", "50%", "--bake", "5s", "--alarm", "jd-judge")
	waitFor(t, 60*time.Second, "v2 in service", func() bool {
		ep := p.endpoint("jd")
		return ep.Deployment == nil && ep.EndpointStatus == kiln.StatusInService && ep.EndpointConfigName == "jd-v2"
	})
	t.Logf("good deployment took %v", time.Since(start))
	g.halt()
	ep = p.endpoint("jd")
	if ep.FailureReason != "" {
		t.Errorf("good deployment: %q", ep.FailureReason)
	}
	t.Log(p.mustCLI("alarms", "history", "jd-judge"))
}

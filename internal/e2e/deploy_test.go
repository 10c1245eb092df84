package e2e

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// fiveXX is an alarm on the endpoint's 5xx errors over 1-second periods.
func (p *kilnProc) fiveXX(name, endpoint string) {
	p.mustCLI("alarms", "put", name, "--metric", "Invocation5XXErrors", "--endpoint", endpoint, "--variant", "AllTraffic",
		"--statistic", "Sum", "--period", "1", "--evaluation-periods", "1", "--threshold", "0",
		"--comparison", "GreaterThanThreshold", "--treat-missing-data", "notBreaching")
}

// shareOf measures the share of n invocations answered by the version,
// sending them from four goroutines.
func (p *kilnProc) shareOf(endpoint, version string, n int) float64 {
	p.t.Helper()
	var mu sync.Mutex
	hits, failed := 0, ""
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/4; i++ {
				r, err := p.invoke(endpoint, body)
				mu.Lock()
				if err != nil || r.status != 200 {
					failed = fmt.Sprintf("%v %d %s", err, r.status, r.body)
				} else if r.version == version {
					hits++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed != "" {
		p.t.Fatalf("invocation failed during the deployment: %s", failed)
	}
	return float64(hits) / float64(n/4*4)
}

func greenShareOf(ep kiln.Endpoint) float64 {
	if ep.Deployment == nil {
		return 0
	}
	green := map[string]bool{}
	for _, id := range ep.Deployment.Green {
		green[id] = true
	}
	s := 0.0
	for _, f := range ep.Fleets {
		if green[f.ID] {
			s += f.TrafficShare
		}
	}
	return s
}

// A healthy canary completes with no failed invocation, and during its bake
// the share served by green is the plan's, within 5 points.
func TestCanaryHealthy(t *testing.T) {
	p := startKiln(t, "")
	p.applyYAML(demoYAML("can", 2))
	p.waitInService("can", 30*time.Second)
	p.fiveXX("can-5xx", "can")
	g := startLoad(p, "can", 2, 2*time.Millisecond)
	p.mustCLI("deploy", "can", "--config", "can-v2", "--canary", "50%", "--bake", "12s", "--alarm", "can-5xx")
	waitFor(t, 30*time.Second, "the canary bake", func() bool {
		ep := p.endpoint("can")
		return ep.Deployment != nil && ep.Deployment.Phase == kiln.PhaseBaking && greenShareOf(ep) > 0 && greenShareOf(ep) < 1
	})
	// 1,200 draws put 5 points at over 3 standard deviations of chance.
	share := p.shareOf("can", "v2", 1200)
	t.Logf("green served %.1f%% during the canary bake (plan: 50%%)", share*100)
	if math.Abs(share-0.5) > 0.05 {
		t.Errorf("green served %.1f%% during the canary bake, want 50%% ± 5", share*100)
	}
	p.waitInService("can", 60*time.Second)
	g.halt()
	ok, fails, _ := g.counts()
	if fails != 0 {
		t.Errorf("%d of %d invocations failed during a healthy canary", fails, ok+fails)
	}
	ep := p.endpoint("can")
	if ep.EndpointConfigName != "can-v2" || ep.FailureReason != "" {
		t.Errorf("after the canary: config %s, failure %q; want can-v2 and none", ep.EndpointConfigName, ep.FailureReason)
	}
	if s := p.shareOf("can", "v2", 50); s != 1 {
		t.Errorf("after the canary %.0f%% of invocations reach v2, want 100%%", s*100)
	}
	hist := p.mustCLI("history", "can")
	for _, want := range []string{"Baking", "Terminat"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %q:\n%s", want, hist)
		}
	}
}

// A canary of a model that fails every request is rolled back on its own:
// all traffic is back on blue within 2 s of the first failure, and the
// endpoint ends InService on the old config with FailureReason set.
func TestCanaryRollsBackOnAlarm(t *testing.T) {
	t.Run("metric alarm", func(t *testing.T) { canaryRollsBack(t, "rb-5xx") })
	// A composite alarm over the same alarm rolls back as fast.
	t.Run("composite alarm", func(t *testing.T) { canaryRollsBack(t, "rb-any") })
}

// canaryRollsBack deploys a model that fails every request as a canary
// watched by the alarm watch (rb-5xx, or the composite rb-any over it), and
// checks that traffic goes back to blue within 2 s of the first failure.
func canaryRollsBack(t *testing.T, watch string) {
	p := startKiln(t, "")
	p.applyYAML(demoYAML("rb", 2))
	p.waitInService("rb", 30*time.Second)
	p.fiveXX("rb-5xx", "rb")
	p.mustCLI("alarms", "put", "rb-any", "--rule", "ALARM(rb-5xx) OR ALARM(rb-p99)")
	g := startLoad(p, "rb", 2, 2*time.Millisecond)
	p.mustCLI("deploy", "rb", "--config", "rb-bad", "--canary", "50%", "--bake", "60s", "--alarm", watch)

	// Poll the routing state fast, to see when green's share drops to 0.
	var backAt time.Time
	deadline := time.Now().Add(60 * time.Second)
	sawGreen := false
	for time.Now().Before(deadline) {
		ep := p.endpoint("rb")
		s := greenShareOf(ep)
		if s > 0 {
			sawGreen = true
		}
		if sawGreen && (s == 0 || ep.Deployment == nil) {
			backAt = time.Now()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if backAt.IsZero() {
		t.Fatal("traffic never went back to blue")
	}
	_, fails, first := g.counts()
	if first.IsZero() {
		t.Fatal("green never failed a request")
	}
	took := backAt.Sub(first)
	t.Logf("all traffic back on blue %v after the first failure; %d failed requests", took, fails)
	if took > 2*time.Second {
		t.Errorf("traffic went back to blue %v after the first failure, want within 2s", took)
	}
	p.waitInService("rb", 60*time.Second)
	g.halt()
	ep := p.endpoint("rb")
	if ep.EndpointConfigName != "rb-v1" {
		t.Errorf("after the rollback the endpoint runs %s, want rb-v1", ep.EndpointConfigName)
	}
	if !strings.Contains(ep.FailureReason, watch) {
		t.Errorf("FailureReason %q does not name the alarm", ep.FailureReason)
	}
	if s := p.shareOf("rb", "v1", 50); s != 1 {
		t.Errorf("after the rollback %.0f%% of invocations reach v1, want 100%%", s*100)
	}
}

// A linear rollout over 4 instances in 25% steps shows green's observed share
// stepping 25/50/75/100.
func TestLinearSteps(t *testing.T) {
	p := startKiln(t, "")
	p.applyYAML(demoYAML("lin", 4))
	p.waitInService("lin", 60*time.Second)
	p.mustCLI("deploy", "lin", "--config", "lin-v2", "--linear", "25%", "--bake", "8s")
	seen := map[int]float64{}
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		ep := p.endpoint("lin")
		if ep.Deployment == nil {
			break
		}
		want := greenShareOf(ep)
		step := int(math.Round(want * 4))
		if ep.Deployment.Phase != kiln.PhaseBaking || step == 0 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if _, done := seen[step]; done {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		// 600 draws put 8 points at over 3.5 standard deviations of chance.
		got := p.shareOf("lin", "v2", 600)
		// The step may end while we measure; only keep it if it held.
		if after := p.endpoint("lin"); greenShareOf(after) == want {
			seen[step] = got
			t.Logf("step %d: plan %.0f%%, observed %.1f%%", step, want*100, got*100)
		}
	}
	for step := 1; step <= 4; step++ {
		got, ok := seen[step]
		if !ok {
			t.Errorf("no bake observed at %d%%", step*25)
			continue
		}
		if math.Abs(got-float64(step)/4) > 0.08 {
			t.Errorf("at step %d green served %.1f%%, want %d%% ± 8", step, got*100, step*25)
		}
	}
	p.waitInService("lin", 60*time.Second)
}

// A rolling update of 4 instances in batches of 25% completes with no failed
// invocation; a second one, to a failing model, rolls back on its alarm.
func TestRollingUpdate(t *testing.T) {
	p := startKiln(t, "")
	p.applyYAML(demoYAML("roll", 4))
	p.waitInService("roll", 60*time.Second)
	p.fiveXX("roll-5xx", "roll")
	g := startLoad(p, "roll", 2, 2*time.Millisecond)
	p.mustCLI("deploy", "roll", "--config", "roll-v2", "--rolling", "25%", "--bake", "1s", "--alarm", "roll-5xx")
	waitFor(t, 5*time.Second, "the update to start", func() bool { return p.endpoint("roll").Deployment != nil })
	p.waitInService("roll", 120*time.Second)
	g.halt()
	ok, fails, _ := g.counts()
	if fails != 0 {
		t.Errorf("%d of %d invocations failed during a rolling update", fails, ok+fails)
	}
	ep := p.endpoint("roll")
	if ep.EndpointConfigName != "roll-v2" || ep.FailureReason != "" {
		t.Fatalf("after the rolling update: %s %q", ep.EndpointConfigName, ep.FailureReason)
	}
	// The last old instance may still be draining; then 4 remain.
	waitFor(t, 30*time.Second, "4 instances after the rolling update", func() bool {
		insts, _ := p.client.EndpointInstances(context.Background(), "roll")
		return len(insts) == 4
	})

	g = startLoad(p, "roll", 2, 2*time.Millisecond)
	defer g.halt()
	p.mustCLI("deploy", "roll", "--config", "roll-bad", "--rolling", "25%", "--bake", "30s", "--alarm", "roll-5xx")
	waitFor(t, 5*time.Second, "the update to start", func() bool { return p.endpoint("roll").Deployment != nil })
	p.waitInService("roll", 120*time.Second)
	ep = p.endpoint("roll")
	if ep.EndpointConfigName != "roll-v2" || !strings.Contains(ep.FailureReason, "roll-5xx") {
		t.Errorf("after the failed rolling update: config %s, FailureReason %q; want roll-v2 and the alarm named", ep.EndpointConfigName, ep.FailureReason)
	}
}

// Bad deployment configs are refused with a message that names the problem.
func TestDeployValidation(t *testing.T) {
	p := startKiln(t, "")
	p.applyYAML(demoYAML("val", 2))
	p.waitInService("val", 30*time.Second)
	p.fiveXX("val-5xx", "val")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--canary", "60%"}, "CanarySize"},
		{[]string{"--linear", "5%"}, "LinearStepSize"},
		{[]string{"--canary", "2"}, "half"},
		{[]string{"--canary", "1", "--bake", "2h"}, "WaitIntervalInSeconds"},
		{[]string{"--canary", "1", "--timeout", "5m"}, "MaximumExecutionTimeoutInSeconds"},
		{[]string{"--canary", "1", "--alarm", "nope"}, "nope"},
	}
	for _, tc := range cases {
		_, err := p.cli(append([]string{"deploy", "val", "--config", "val-v2"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("deploy %v: got %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
	// An update while one runs is refused.
	p.mustCLI("deploy", "val", "--config", "val-v2", "--canary", "1", "--bake", "60s")
	_, err := p.cli("deploy", "val", "--config", "val-v2", "--canary", "1")
	if err == nil || !strings.Contains(err.Error(), "Cannot update in-progress endpoint") {
		t.Errorf("second update: %v, want Cannot update in-progress endpoint", err)
	}
	// Roll back by hand.
	p.mustCLI("rollback", "val")
	p.waitInService("val", 60*time.Second)
	if ep := p.endpoint("val"); ep.EndpointConfigName != "val-v1" {
		t.Errorf("after a manual rollback the endpoint runs %s, want val-v1", ep.EndpointConfigName)
	}
}

// kiln weights changes a variant's instance count in place.
func TestWeightsAndCapacities(t *testing.T) {
	p := startKiln(t, "")
	p.applyYAML(demoYAML("wc", 1))
	p.waitInService("wc", 30*time.Second)
	if _, err := p.cli("weights", "wc", "Nope=1"); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("weights for an unknown variant: %v, want an error naming it", err)
	}
	p.mustCLI("weights", "wc", "AllTraffic=0.5:3")
	waitFor(t, 5*time.Second, "the update to start", func() bool { return p.endpoint("wc").Deployment != nil })
	p.waitInService("wc", 60*time.Second)
	ep := p.endpoint("wc")
	if v := ep.ProductionVariants[0]; v.CurrentInstanceCount != 3 || v.CurrentWeight != 0.5 {
		t.Errorf("after weights: %d instances, weight %g; want 3 and 0.5", v.CurrentInstanceCount, v.CurrentWeight)
	}
	waitFor(t, 30*time.Second, "3 routable instances", func() bool {
		insts, _ := p.client.EndpointInstances(context.Background(), "wc")
		n := 0
		for _, in := range insts {
			if in.Routable {
				n++
			}
		}
		return n == 3
	})
}

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// slowYAML adds a model whose instances take a while to start, so that a
// deployment spends long enough provisioning to be killed there.
func slowYAML(endpoint string) string {
	return fmt.Sprintf(`models:
  - ModelName: %[1]s-slow
    PrimaryContainer:
      Image: %[2]s demo-model
      Environment: {KILN_DEMO_VERSION: v2, KILN_DEMO_STARTUP_DELAY_MS: "3000"}
endpointConfigs:
  - EndpointConfigName: %[1]s-slow
    ProductionVariants:
      - {VariantName: AllTraffic, ModelName: %[1]s-slow, InitialInstanceCount: 2, InstanceType: ml.m5.large}
`, endpoint, kilnBin)
}

// instancePIDs lists the PIDs of every instance of the endpoint.
func (p *kilnProc) instancePIDs(endpoint string) []int {
	insts, err := p.client.EndpointInstances(context.Background(), endpoint)
	if err != nil {
		p.t.Fatalf("instances: %v", err)
	}
	var pids []int
	for _, in := range insts {
		if in.PID > 0 {
			pids = append(pids, in.PID)
		}
	}
	return pids
}

// crashAndRestart kills Kiln with SIGKILL, checks that no instance survives
// it, and starts Kiln again on the same data.
func crashAndRestart(t *testing.T, p *kilnProc, endpoint string) *kilnProc {
	t.Helper()
	pids := p.instancePIDs(endpoint)
	p.kill()
	waitFor(t, 10*time.Second, "instances to die with kiln", func() bool {
		for _, pid := range pids {
			if processAlive(pid) {
				return false
			}
		}
		return true
	})
	return startKiln(t, p.dataDir)
}

// settle waits for the deployment to end and checks that the endpoint
// serves every request from what it now runs.
func settle(t *testing.T, p *kilnProc, endpoint string) kiln.Endpoint {
	t.Helper()
	p.waitInService(endpoint, 90*time.Second)
	ep := p.endpoint(endpoint)
	// After a restart the instances start afresh; until the first is
	// healthy, invocations wait for it.
	for i := 0; i < 100; i++ {
		r, err := p.invoke(endpoint, body)
		if err != nil || r.status != 200 {
			t.Fatalf("invocation %d after recovery: %v %d %s", i, err, r.status, r.body)
		}
	}
	insts, _ := p.client.EndpointInstances(context.Background(), endpoint)
	want := 0
	for _, f := range ep.Fleets {
		want += f.InstanceCount
	}
	if len(insts) != want {
		t.Errorf("%d instances run after recovery, want %d (the fleets' InstanceCount)", len(insts), want)
	}
	return ep
}

// kill -9 of Kiln in each phase of a deployment, then a restart: the
// deployment resumes or rolls back on its own, every request succeeds
// afterwards, and no instance process is leaked.
func TestCrashInEachPhase(t *testing.T) {
	phases := []struct {
		name    string
		config  string
		args    []string
		reached func(ep kiln.Endpoint) bool
		want    string // the config the endpoint must end on
	}{
		{"provisioning", "slow", []string{"--canary", "50%", "--bake", "2s"},
			func(ep kiln.Endpoint) bool {
				return ep.Deployment != nil && ep.Deployment.Phase == kiln.PhaseProvisioning
			}, "slow"},
		{"canary bake", "v2", []string{"--canary", "50%", "--bake", "4s"},
			func(ep kiln.Endpoint) bool {
				return ep.Deployment != nil && ep.Deployment.Phase == kiln.PhaseBaking && greenShareOf(ep) > 0 && greenShareOf(ep) < 1
			}, "v2"},
		{"linear shift", "v2", []string{"--linear", "50%", "--bake", "3s"},
			func(ep kiln.Endpoint) bool { return ep.Deployment != nil && greenShareOf(ep) > 0 }, "v2"},
		{"final bake", "v2", []string{"--all-at-once", "--final-bake", "4s"},
			func(ep kiln.Endpoint) bool { return ep.Deployment != nil && greenShareOf(ep) == 1 }, "v2"},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			name := "cr" + strings.ReplaceAll(ph.name, " ", "")
			p := startKiln(t, "")
			p.applyYAML(demoYAML(name, 2) + "\n")
			p.applyYAML(slowYAML(name))
			p.waitInService(name, 30*time.Second)
			p.mustCLI(append([]string{"deploy", name, "--config", name + "-" + ph.config}, ph.args...)...)
			waitFor(t, 30*time.Second, ph.name, func() bool { return ph.reached(p.endpoint(name)) })
			p2 := crashAndRestart(t, p, name)
			ep := settle(t, p2, name)
			if ep.EndpointConfigName != name+"-"+ph.want {
				t.Errorf("after the crash the endpoint runs %s (failure %q), want %s-%s", ep.EndpointConfigName, ep.FailureReason, name, ph.want)
			}
		})
	}

	t.Run("rollback", func(t *testing.T) {
		p := startKiln(t, "")
		p.applyYAML(demoYAML("crrb", 2))
		p.waitInService("crrb", 30*time.Second)
		p.mustCLI("deploy", "crrb", "--config", "crrb-v2", "--canary", "50%", "--bake", "30s")
		waitFor(t, 30*time.Second, "the canary", func() bool { return greenShareOf(p.endpoint("crrb")) > 0 })
		p.mustCLI("rollback", "crrb")
		p2 := crashAndRestart(t, p, "crrb")
		ep := settle(t, p2, "crrb")
		if ep.EndpointConfigName != "crrb-v1" || ep.FailureReason == "" {
			t.Errorf("after a crash during rollback: %s %q; want crrb-v1 with a FailureReason", ep.EndpointConfigName, ep.FailureReason)
		}
	})

	// Kill again and again through a linear rollout, at whatever phase it is.
	t.Run("repeated", func(t *testing.T) {
		p := startKiln(t, "")
		p.applyYAML(demoYAML("crrep", 2))
		p.waitInService("crrep", 30*time.Second)
		p.mustCLI("deploy", "crrep", "--config", "crrep-v2", "--linear", "50%", "--bake", "2s", "--final-bake", "1s")
		for i := 0; i < 4; i++ {
			time.Sleep(time.Duration(500+300*i) * time.Millisecond)
			ep := p.endpoint("crrep")
			phase := "done"
			if ep.Deployment != nil {
				phase = ep.Deployment.Phase
			}
			t.Logf("crash %d in phase %s, green share %.2f", i+1, phase, greenShareOf(ep))
			p = crashAndRestart(t, p, "crrep")
		}
		ep := settle(t, p, "crrep")
		if ep.EndpointConfigName != "crrep-v2" {
			t.Errorf("after repeated crashes the endpoint runs %s (%q), want crrep-v2", ep.EndpointConfigName, ep.FailureReason)
		}
	})
}

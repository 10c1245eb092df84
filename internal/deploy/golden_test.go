package deploy

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/")

// TestGoldenTranscripts writes every record of a few deployments as text
// and compares it with testdata/<name>.golden; go test -update rewrites
// them. The transcripts show what DescribeEndpoint shows at each step.
func TestGoldenTranscripts(t *testing.T) {
	two := func(name, model string) kiln.EndpointConfig {
		return config(name, pv{name: "a", model: model, count: 4}, pv{name: "b", model: model, count: 2, weight: 2})
	}
	tests := []struct {
		name string
		sc   scenario
	}{
		{"canary", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a"))}},
		{"canary-alarm", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a")), alarm: 300 * time.Second}},
		{"alarm-before-traffic", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a")), alarm: -1}},
		{"linear", scenario{start: startedWith(c1, c2, linearConfig(pct(25), 60, 120, "a"))}},
		{"all-at-once", scenario{start: startedWith(c1, c2, allAtOnceConfig(60, 0, "a"))}},
		{"launch-failure", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a")), health: failingGreen}},
		{"stop", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a")), stop: 100 * time.Second}},
		{"lockstep", scenario{start: startedWith(two("c1", "m1"), two("c2", "m2"), linearConfig(pct(25), 60, 0, "a"))}},
		{"rolling", scenario{start: startedWith(c1, c2, rollingConfig(pct(25), nil, 60, "a"))}},
		{"rolling-rollback", scenario{start: startedWith(c1, c2, rollingConfig(pct(25), count(1), 60, "a")), alarm: 150 * time.Second}},
		{"no-evidence", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a")), answered: noTraffic}},
		{"min-requests", scenario{start: startedWith(c1, c2, withEvidence(canaryConfig(count(1), 600, 300, "a"), 5, 0)), answered: trafficFrom(0, 1)}},
		{"min-requests-timeout", scenario{start: startedWith(c1, c2, withEvidence(canaryConfig(count(1), 600, 300, "a"), 5, 900)), answered: noTraffic}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.sc.start(t)
			start := cloneEndpoint(w.ep)
			run := tt.sc.run(t, start, t0)
			var b strings.Builder
			transcribe(&b, t0, start)
			for _, r := range run.records {
				transcribe(&b, r.at, r.ep)
			}
			b.WriteString("history:\n")
			for _, ev := range run.history {
				fmt.Fprintf(&b, "  %-7s %-17s step %d  green %3.0f%%  %s\n", offset(ev.Time), ev.Phase, ev.Step, ev.GreenShare*100, ev.Message)
			}
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("transcript differs from %s (go test -update rewrites it):\n%s", path, got)
			}
		})
	}
}

func offset(at time.Time) string { return "+" + at.Sub(t0).String() }

func transcribe(b *strings.Builder, at time.Time, ep kiln.Endpoint) {
	phase := "-"
	if d := ep.Deployment; d != nil {
		phase = fmt.Sprintf("%s step %d", d.Phase, d.Step)
	}
	fmt.Fprintf(b, "%-7s %-9s %-24s config %s", offset(at), ep.EndpointStatus, phase, ep.EndpointConfigName)
	if ep.FailureReason != "" {
		fmt.Fprintf(b, "  failure %q", ep.FailureReason)
	}
	if ep.EvidenceWarning != "" {
		fmt.Fprintf(b, "  warning %q", ep.EvidenceWarning)
	}
	b.WriteString("\n")
	for _, f := range ep.Fleets {
		fmt.Fprintf(b, "          fleet %-5s %s/%s  %d running, %d active, share %.2f\n", f.ID, f.VariantName, f.EndpointConfigName, f.InstanceCount, f.ActiveInstanceCount, f.TrafficShare)
	}
	for _, pv := range ep.ProductionVariants {
		fmt.Fprintf(b, "          variant %s weight %g→%g instances %d→%d", pv.VariantName, pv.CurrentWeight, pv.DesiredWeight, pv.CurrentInstanceCount, pv.DesiredInstanceCount)
		for _, st := range pv.VariantStatus {
			fmt.Fprintf(b, "  %s: %s", st.Status, st.StatusMessage)
		}
		b.WriteString("\n")
	}
}

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// loadGen invokes an endpoint from a few goroutines until stopped, and
// remembers when the first failure was seen.
type loadGen struct {
	stop      chan struct{}
	wg        sync.WaitGroup
	mu        sync.Mutex
	ok, fail  int
	firstFail time.Time
	versions  map[string]int
}

func startLoad(p *kilnProc, endpoint string, workers int, pause time.Duration) *loadGen {
	g := &loadGen{stop: make(chan struct{}), versions: map[string]int{}}
	for i := 0; i < workers; i++ {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for {
				select {
				case <-g.stop:
					return
				default:
				}
				r, err := p.invoke(endpoint, body)
				now := time.Now()
				g.mu.Lock()
				if err != nil || r.status != 200 {
					g.fail++
					if g.firstFail.IsZero() {
						g.firstFail = now
					}
				} else {
					g.ok++
					g.versions[r.version]++
				}
				g.mu.Unlock()
				if pause > 0 {
					time.Sleep(pause)
				}
			}
		}()
	}
	return g
}

func (g *loadGen) halt() {
	close(g.stop)
	g.wg.Wait()
}

func (g *loadGen) counts() (ok, fail int, first time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ok, g.fail, g.firstFail
}

func (p *kilnProc) alarmState(name string) kiln.AlarmState {
	p.t.Helper()
	a, err := p.client.GetAlarm(context.Background(), name)
	if err != nil {
		p.t.Fatalf("get alarm %s: %v", name, err)
	}
	return a.AlarmState
}

// An alarm on Invocation5XXErrors (Sum > 0 over 1-second periods) goes to
// ALARM within 2 s of the first error, and back to OK when errors stop.
func TestAlarmWithinTwoSecondsOfFirstError(t *testing.T) {
	p := startKiln(t, "")
	p.applyYAML(demoYAMLOn("boom", 1, "bad"))
	p.waitInService("boom", 30*time.Second)
	p.mustCLI("alarms", "put", "boom-5xx", "--metric", "Invocation5XXErrors", "--endpoint", "boom", "--variant", "AllTraffic",
		"--statistic", "Sum", "--period", "1", "--evaluation-periods", "1", "--threshold", "0",
		"--comparison", "GreaterThanThreshold", "--treat-missing-data", "notBreaching")
	if st := p.alarmState("boom-5xx"); st.StateValue != kiln.StateInsufficientData && st.StateValue != kiln.StateOK {
		t.Fatalf("new alarm is %s, want INSUFFICIENT_DATA (or OK once evaluated without data)", st.StateValue)
	}

	g := startLoad(p, "boom", 2, 5*time.Millisecond)
	var alarmAt time.Time
	waitFor(t, 10*time.Second, "ALARM", func() bool {
		if p.alarmState("boom-5xx").StateValue == kiln.StateAlarm {
			alarmAt = time.Now()
			return true
		}
		return false
	})
	g.halt()
	_, fails, first := g.counts()
	if fails == 0 {
		t.Fatal("the failing model never failed")
	}
	took := alarmAt.Sub(first)
	t.Logf("ALARM %v after the first error", took)
	if took > 2*time.Second {
		t.Errorf("ALARM came %v after the first error, want within 2s", took)
	}
	st := p.alarmState("boom-5xx")
	if !strings.Contains(st.StateReason, "Threshold Crossed") && !strings.Contains(st.StateReason, "threshold") {
		t.Errorf("StateReason %q does not explain the threshold crossing", st.StateReason)
	}
	waitFor(t, 10*time.Second, "OK after errors stop", func() bool { return p.alarmState("boom-5xx").StateValue == kiln.StateOK })

	// The transitions are in the history.
	hist := p.mustCLI("alarms", "history", "boom-5xx")
	for _, want := range []string{"to ALARM", "ALARM to OK"} {
		if !strings.Contains(hist, want) {
			t.Errorf("alarm history lacks %q:\n%s", want, hist)
		}
	}
	// And the metrics show the errors.
	if m := p.mustCLI("metrics", "boom", "--window", "1m"); !strings.Contains(m, "boom-bad") {
		t.Errorf("kiln metrics does not show the fleet:\n%s", m)
	}
}

// An alarm can take its data from a real Prometheus server that scrapes
// Kiln's /metrics.
func TestPrometheusAlarm(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("KILN_REQUIRE_SERVERS") != "" {
			t.Fatal("prometheus is not installed (Debian package prometheus); ./scripts/test installs it")
		}
		t.Skip("prometheus is not installed")
	}
	p := startKiln(t, "")
	p.applyYAML(demoYAMLOn("pq", 1, "bad"))
	p.waitInService("pq", 30*time.Second)

	dir := t.TempDir()
	promAddr := freeAddr(t)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: kiln
    static_configs:
      - targets: ["%s"]
`, p.addr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", tail(out.String(), 4000))
		}
	})
	p.mustCLI("alarms", "put", "pq-prom", "--prometheus-url", "http://"+promAddr,
		"--promql", `sum(increase(kiln_invocation_errors_total{endpoint="pq",class="5xx"}[5s]))`,
		"--statistic", "Maximum", "--period", "1", "--evaluation-periods", "1", "--threshold", "0",
		"--comparison", "GreaterThanThreshold", "--treat-missing-data", "notBreaching")
	// No errors yet: the alarm settles on OK (Prometheus has no such
	// series yet, which is missing data, treated as not breaching).
	waitFor(t, 30*time.Second, "OK before errors", func() bool { return p.alarmState("pq-prom").StateValue == kiln.StateOK })
	g := startLoad(p, "pq", 1, 10*time.Millisecond)
	defer g.halt()
	waitFor(t, 30*time.Second, "ALARM from Prometheus", func() bool {
		st := p.alarmState("pq-prom")
		t.Logf("%s: %s", st.StateValue, st.StateReason)
		return st.StateValue == kiln.StateAlarm
	})
	t.Logf("reason: %s", p.alarmState("pq-prom").StateReason)
}

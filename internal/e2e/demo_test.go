package e2e

import (
	"bufio"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api/client"
)

// demoProc is one running `kiln demo` and the deploy commands it printed,
// by the config they deploy.
type demoProc struct {
	cmd     *exec.Cmd
	url     string
	deploys map[string]string
	done    chan struct{}
	logs    *syncBuffer
}

// The demo prints its commands as it was run: here the built binary's path
// (go run ./cmd/kiln from a go run).
var demoDeployRE = regexp.MustCompile(`^\s+(?:go run \./cmd/kiln|\S*kiln) (deploy demo .*--config (\S+).*)$`)

// startDemo runs `kiln demo` on dataDir and reads what it prints until it
// is ready.
func startDemo(t *testing.T, dataDir string) *demoProc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(kilnBin, "demo", "--addr", addr, "--data-dir", dataDir, "--traffic", "10")
	logs := &syncBuffer{}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &demoProc{cmd: cmd, url: "http://" + addr, deploys: map[string]string{}, done: make(chan struct{}), logs: logs}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if m := demoDeployRE.FindStringSubmatch(line); m != nil {
				d.deploys[m[2]] = m[1]
			}
			if strings.Contains(line, "Press Ctrl-C") {
				close(ready)
			}
		}
	}()
	go func() { cmd.Wait(); close(d.done) }()
	t.Cleanup(d.stop)
	select {
	case <-ready:
	case <-d.done:
		t.Fatalf("kiln demo exited:\n%s", logs.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("kiln demo printed no help within 2 minutes:\n%s", logs.String())
	}
	return d
}

func (d *demoProc) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.done:
	case <-time.After(45 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// follow runs the deploy command the demo printed for config against the
// kiln at url, as a user pastes it, and returns the endpoint once the
// update has ended. Its exit status is not what is checked here: the
// endpoint's record is.
func follow(t *testing.T, p *kilnProc, printed map[string]string, config string) kiln.Endpoint {
	t.Helper()
	line, ok := printed[config]
	if !ok {
		t.Fatalf("the demo printed no deploy of %s: %v", config, printed)
	}
	args := strings.Fields(line)
	for i := range args {
		if i > 0 && args[i-1] == "--server" {
			args[i] = p.url
		}
	}
	before := p.endpoint("demo").LastModifiedTime
	out, err := exec.Command(kilnBin, args...).CombinedOutput()
	t.Logf("kiln %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 1500))
	ep := p.endpoint("demo")
	if ep.Deployment != nil || !ep.LastModifiedTime.After(before) {
		t.Fatalf("after kiln %s the update has not run to its end: %s, deployment %+v", strings.Join(args, " "), ep.EndpointStatus, ep.Deployment)
	}
	return ep
}

// The deploy commands `kiln demo` prints are safe to follow in any order,
// with the demo's traffic and without it (kiln serve on the demo's data
// dir sends none): the failing model is never promoted, and a good update
// that follows the failing one right away is not refused because of the
// alarm the failure set off.
func TestDemoPrintedCommands(t *testing.T) {
	dir := sharedTempDir(t)
	d := startDemo(t, dir)
	for _, c := range []string{"demo-v1", "demo-v2", "demo-bad"} {
		if !strings.Contains(d.deploys[c], "--min-requests") {
			t.Errorf("the printed deploy of %s asks for no evidence: %q", c, d.deploys[c])
		}
	}
	p := &kilnProc{t: t, url: d.url, client: &client.Client{BaseURL: d.url, HTTP: &http.Client{Timeout: 30 * time.Second}}}

	// With the demo's traffic: the failing model, then a good one at once.
	ep := follow(t, p, d.deploys, "demo-bad")
	if ep.EndpointConfigName != "demo-v1" || !strings.Contains(ep.FailureReason, `alarm "demo-5xx" is in ALARM`) {
		t.Fatalf("demo-bad with traffic: on %s (%q), want rolled back to demo-v1 by demo-5xx", ep.EndpointConfigName, ep.FailureReason)
	}
	ep = follow(t, p, d.deploys, "demo-v2")
	if ep.EndpointConfigName != "demo-v2" || ep.FailureReason != "" || ep.EvidenceWarning != "" {
		t.Fatalf("demo-v2 right after demo-bad: on %s (failure %q, warning %q), want demo-v2 promoted", ep.EndpointConfigName, ep.FailureReason, ep.EvidenceWarning)
	}
	d.stop()

	// kiln serve on the demo's data dir: no traffic.
	s := startKiln(t, dir)
	s.waitInService("demo", 60*time.Second)
	ep = follow(t, s, d.deploys, "demo-bad")
	if ep.EndpointConfigName != "demo-v2" || !strings.Contains(ep.FailureReason, "answered 0 of the 5 requests") {
		t.Fatalf("demo-bad without traffic: on %s (%q), want not promoted, for want of requests", ep.EndpointConfigName, ep.FailureReason)
	}
	g := startLoad(s, "demo", 1, 50*time.Millisecond)
	defer g.halt()
	ep = follow(t, s, d.deploys, "demo-bad")
	if ep.EndpointConfigName != "demo-v2" || !strings.Contains(ep.FailureReason, `alarm "demo-5xx" is in ALARM`) {
		t.Fatalf("demo-bad with traffic after a restart: on %s (%q), want rolled back by demo-5xx", ep.EndpointConfigName, ep.FailureReason)
	}
	ep = follow(t, s, d.deploys, "demo-v1")
	if ep.EndpointConfigName != "demo-v1" || ep.FailureReason != "" {
		t.Fatalf("demo-v1 right after demo-bad: on %s (%q), want demo-v1 promoted", ep.EndpointConfigName, ep.FailureReason)
	}
}

package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// watchRun is one run of a kiln client command: its output and exit status.
type watchRun struct {
	out, errOut string
	code        int
}

// runCLI runs a kiln client command to its end and returns its exit status
// instead of failing on a non-zero one.
func (p *kilnProc) runCLI(args ...string) watchRun {
	p.t.Helper()
	cmd := exec.Command(kilnBin, append(args, "--server", p.url)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		p.t.Fatalf("kiln %s: %v", strings.Join(args, " "), err)
	}
	return watchRun{out: out.String(), errOut: errOut.String(), code: cmd.ProcessState.ExitCode()}
}

// runOnTerminal runs a kiln client command on a pseudo-terminal, with
// script(1), and returns what the terminal received and the exit status.
func (p *kilnProc) runOnTerminal(args ...string) watchRun {
	p.t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		p.t.Fatalf("script(1) (util-linux) is needed to run kiln on a terminal: %v", err)
	}
	line := kilnBin
	for _, a := range append(args, "--server", p.url) {
		line += " '" + a + "'"
	}
	cmd := exec.Command(script, "-q", "-e", "-c", line, "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=xterm")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		p.t.Fatalf("script -c %s: %v", line, err)
	}
	return watchRun{out: out.String(), code: cmd.ProcessState.ExitCode()}
}

var cursorUp = regexp.MustCompile(`\x1b\[(\d+)A`)

// screenHeight is how many rows of a terminal the output used: each
// newline moves down a row, each cursor-up moves back up.
func screenHeight(out string) int {
	row, most := 0, 0
	for len(out) > 0 {
		if loc := cursorUp.FindStringSubmatchIndex(out); loc != nil && loc[0] == 0 {
			n, _ := strconv.Atoi(out[loc[2]:loc[3]])
			row -= n
			out = out[loc[1]:]
			continue
		}
		if out[0] == '\n' {
			row++
			most = max(most, row)
		}
		out = out[1:]
	}
	return most
}

// TestDeployWatch: deploy --watch and status --watch exit with the outcome
// of the deployment they follow (3 rolled back by an alarm, 4 stopped by an
// operator, 0 completed); piped, they print a line only when something
// changed; on a terminal they redraw in place; the failure of the last
// update is not repeated during the next one.
func TestDeployWatch(t *testing.T) {
	p := startKiln(t, "")
	p.applyYAML(demoYAML("wt", 2))
	p.waitInService("wt", 30*time.Second)
	p.fiveXX("wt-5xx", "wt")
	g := startLoad(p, "wt", 1, 5*time.Millisecond)
	defer g.halt()

	// A model that fails every request: rolled back by the alarm.
	r := p.runCLI("deploy", "wt", "--config", "wt-bad", "--canary", "50%", "--bake", "30s", "--alarm", "wt-5xx", "--watch")
	t.Logf("deploy wt-bad --watch (exit %d):\n%s%s", r.code, r.out, r.errOut)
	if r.code != 3 {
		t.Errorf("deploy --watch of a model rolled back by its alarm: exit status %d, want 3", r.code)
	}
	ep := p.endpoint("wt")
	if ep.FailureReason == "" || !strings.Contains(r.out, ep.FailureReason) {
		t.Errorf("deploy --watch does not end with the full reason %q", ep.FailureReason)
	}
	if strings.Contains(r.out, "\x1b") {
		t.Errorf("piped deploy --watch wrote escape sequences:\n%q", r.out)
	}
	// status --watch with no deployment in progress: the last one's outcome.
	if s := p.runCLI("status", "wt", "--watch"); s.code != 3 {
		t.Errorf("status --watch after the rollback: exit status %d, want 3\n%s%s", s.code, s.out, s.errOut)
	}
	if s := p.runCLI("status", "wt"); s.code != 0 {
		t.Errorf("status (no --watch) after the rollback: exit status %d, want 0", s.code)
	}

	// A good model, piped: one line per change; the last update's failure
	// does not show.
	waitFor(t, 20*time.Second, "wt-5xx back to OK", func() bool { return p.alarmState("wt-5xx").StateValue == kiln.StateOK })
	r = p.runCLI("deploy", "wt", "--config", "wt-v2", "--canary", "50%", "--bake", "8s", "--alarm", "wt-5xx", "--watch")
	t.Logf("deploy wt-v2 --watch (exit %d):\n%s%s", r.code, r.out, r.errOut)
	if r.code != 0 {
		t.Errorf("deploy --watch of a good model: exit status %d, want 0", r.code)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	// About 20 polls over the 8 s bake; a line per change is far fewer.
	if len(lines) > 14 {
		t.Errorf("piped deploy --watch printed %d lines for one canary, want at most 14 (a line per change)", len(lines))
	}
	seen := map[string]bool{}
	for _, l := range lines {
		what := l[strings.Index(l, "]")+1:]
		if seen[what] {
			t.Errorf("piped deploy --watch repeats %q", what)
		}
		seen[what] = true
	}
	if strings.Contains(r.out, "Update rolled back because") {
		t.Errorf("deploy --watch shows the previous update's failure during the next one:\n%s", r.out)
	}

	// Stopped by an operator: exit status 4.
	watch := exec.Command(kilnBin, "deploy", "wt", "--config", "wt-v1", "--canary", "50%", "--bake", "60s", "--watch", "--server", p.url)
	var wout bytes.Buffer
	watch.Stdout, watch.Stderr = &wout, &wout
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the canary bake", func() bool {
		ep := p.endpoint("wt")
		return ep.Deployment != nil && ep.Deployment.Phase == kiln.PhaseBaking
	})
	// A second watch, interrupted: 130, and the deployment goes on.
	sw := exec.Command(kilnBin, "status", "wt", "--watch", "--server", p.url)
	swOut := &syncBuffer{}
	sw.Stdout, sw.Stderr = swOut, swOut
	if err := sw.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "status --watch to show the bake", func() bool { return strings.Contains(swOut.String(), "Baking") })
	sw.Process.Signal(os.Interrupt)
	sw.Wait()
	if c := sw.ProcessState.ExitCode(); c != 130 || !strings.Contains(swOut.String(), "goes on") {
		t.Errorf("status --watch interrupted: exit status %d, want 130, saying the deployment goes on:\n%s", c, swOut.String())
	}
	if ep := p.endpoint("wt"); ep.Deployment == nil {
		t.Errorf("interrupting a watch ended the deployment")
	}
	p.mustCLI("stop", "wt")
	done := make(chan error, 1)
	go func() { done <- watch.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		watch.Process.Kill()
		<-done
		t.Fatalf("deploy --watch did not end after the stop:\n%s", wout.String())
	}
	if c := watch.ProcessState.ExitCode(); c != 4 {
		t.Errorf("deploy --watch of an update an operator stopped: exit status %d, want 4\n%s", c, wout.String())
	}

	// On a terminal: redrawn in place, in a bounded number of rows.
	p.waitInService("wt", 30*time.Second)
	r = p.runOnTerminal("deploy", "wt", "--config", "wt-v1", "--canary", "50%", "--bake", "6s", "--alarm", "wt-5xx", "--watch")
	t.Logf("deploy wt-v1 --watch on a terminal (exit %d): %d bytes, %d newlines", r.code, len(r.out), strings.Count(r.out, "\n"))
	if r.code != 0 {
		t.Errorf("deploy --watch on a terminal: exit status %d, want 0\n%q", r.code, r.out)
	}
	if !cursorUp.MatchString(r.out) || !strings.Contains(r.out, "\x1b[J") {
		t.Errorf("deploy --watch on a terminal does not redraw in place (no cursor-up and clear):\n%q", r.out)
	}
	if h := screenHeight(r.out); h > 10 {
		t.Errorf("deploy --watch on a terminal used %d rows, want at most 10", h)
	}
	if !strings.Contains(r.out, "Deployment completed.") {
		t.Errorf("deploy --watch on a terminal does not end with the outcome:\n%q", r.out)
	}

	// New instances that cannot launch: failed, exit status 5.
	p.waitInService("wt", 30*time.Second)
	p.applyYAML(`models:
  - ModelName: wt-gone
    PrimaryContainer: {Image: /nonexistent/kiln-model}
endpointConfigs:
  - EndpointConfigName: wt-gone
    ProductionVariants:
      - {VariantName: AllTraffic, ModelName: wt-gone, InitialInstanceCount: 2, InstanceType: ml.m5.large}
`)
	r = p.runCLI("deploy", "wt", "--config", "wt-gone", "--canary", "1", "--bake", "5s", "--watch")
	if r.code != 5 || !strings.Contains(r.out, "failed to launch") {
		t.Errorf("deploy --watch of instances that cannot launch: exit status %d, want 5, with the reason\n%s%s", r.code, r.out, r.errOut)
	}
}

package fleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestInstancesBecomeRoutableWithTheirEnvironment(t *testing.T) {
	t.Parallel()
	var changes atomic.Int64
	cfg := testConfig(t)
	cfg.OnChange = func() { changes.Add(1) }
	m := startManager(t, cfg)

	spec := helperSpec("ep1", "f1", 2, map[string]string{"MODEL_KNOB": "42", "PORT": "1"})
	spec.Container.ModelDataUrl = "s3://bucket/model.tar.gz"
	m.Sync([]Spec{spec})
	got := routable(t, m, "ep1", "f1", 2)

	tokens := []string{""}
	for i, in := range got {
		if want := fmt.Sprintf("ep1-f1-%d-1", i); in.ID != want || in.Ordinal != i {
			t.Errorf("instance %d: ID %q ordinal %d, want %q ordinal %d", i, in.ID, in.Ordinal, want, i)
		}
		if in.State != StateHealthy || in.Restarts != 0 || in.LastError != "" || in.StartedAt.IsZero() {
			t.Errorf("instance %s: %+v", in.ID, in)
		}
		reply := invoke(t, in.Addr)
		if reply.PID != in.PID {
			t.Errorf("instance %s: PID %d, but the process says %d", in.ID, in.PID, reply.PID)
		}
		port := in.Addr[strings.LastIndexByte(in.Addr, ':')+1:]
		want := map[string]string{
			"SAGEMAKER_BIND_TO_PORT": port,
			"PORT":                   port, // the contract's value wins over the model's
			"MODEL_KNOB":             "42",
			"KILN_MODEL_DATA_URL":    "s3://bucket/model.tar.gz",
			"KILN_ENDPOINT":          "ep1",
			"KILN_VARIANT":           "AllTraffic",
			"KILN_INSTANCE_ID":       in.ID,
			"KILN_ENDPOINT_CONFIG":   "ep1-config",
			"PATH":                   os.Getenv("PATH"),
		}
		for k, v := range want {
			if reply.Env[k] != v {
				t.Errorf("instance %s: env %s=%q, want %q", in.ID, k, reply.Env[k], v)
			}
		}
		if reply.Env[instanceTokenVar] == "" || reply.Env[instanceTokenVar] == tokens[0] {
			t.Errorf("instance %s: %s=%q, want a token of its own", in.ID, instanceTokenVar, reply.Env[instanceTokenVar])
		}
		tokens = append(tokens, reply.Env[instanceTokenVar])
		if v, ok := reply.Env[secretVar]; ok {
			t.Errorf("instance %s inherited Kiln's environment: %s=%q", in.ID, secretVar, v)
		}
		log := readFile(t, in.LogPath)
		for _, want := range []string{"[kiln] ", in.ID + ": starting on port " + port, "listening on " + in.Addr} {
			if !strings.Contains(log, want) {
				t.Errorf("log of %s lacks %q:\n%s", in.ID, want, log)
			}
		}
	}
	if got[0].Addr == got[1].Addr {
		t.Errorf("both instances listen on %s", got[0].Addr)
	}
	if st := m.FleetStatus("ep1", "f1"); st != (FleetStatus{Healthy: 2}) {
		t.Errorf("FleetStatus = %+v, want 2 healthy", st)
	}
	wantLogs := []string{got[0].LogPath, got[1].LogPath}
	if logs := m.LogFiles("ep1"); !slices.Equal(logs, wantLogs) {
		t.Errorf("LogFiles = %q, want %q", logs, wantLogs)
	}
	if changes.Load() == 0 {
		t.Error("OnChange was never called")
	}

	// Sync again and again with the same fleets: nothing changes.
	for range 5 {
		m.Sync([]Spec{spec})
	}
	time.Sleep(200 * time.Millisecond)
	again := routable(t, m, "ep1", "f1", 2)
	for i := range again {
		if again[i].ID != got[i].ID || again[i].PID != got[i].PID {
			t.Errorf("Sync with the same fleets replaced %s (pid %d) by %s (pid %d)", got[i].ID, got[i].PID, again[i].ID, again[i].PID)
		}
	}
}

func TestKilledInstanceIsReplaced(t *testing.T) {
	t.Parallel()
	var changes atomic.Int64
	cfg := testConfig(t)
	cfg.OnChange = func() { changes.Add(1) }
	m := startManager(t, cfg)
	m.Sync([]Spec{helperSpec("ep2", "f1", 1, nil)})
	old := routable(t, m, "ep2", "f1", 1)[0]

	before := changes.Load()
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed instance to stop being routable", func() bool {
		in, ok := instance(m, old.ID)
		return !ok || !in.Routable
	})
	waitFor(t, "OnChange after the kill", func() bool { return changes.Load() > before })

	in := routable(t, m, "ep2", "f1", 1)[0]
	if in.ID == old.ID || in.ID != "ep2-f1-0-2" || in.Ordinal != 0 || in.Restarts != 1 {
		t.Errorf("replacement = %+v, want ep2-f1-0-2 with 1 restart", in)
	}
	if !strings.Contains(in.LastError, "process exited: signal: killed") {
		t.Errorf("replacement's LastError = %q, want the kill", in.LastError)
	}
	if in.PID == old.PID || alive(old.PID) {
		t.Errorf("old process %d still there", old.PID)
	}
	if st := m.FleetStatus("ep2", "f1"); st.LaunchFailed || st.Healthy != 1 {
		t.Errorf("FleetStatus = %+v, want 1 healthy and no launch failure", st)
	}
	if log := readFile(t, old.LogPath); !strings.Contains(log, old.ID+": exited: signal: killed") {
		t.Errorf("log of %s does not say it was killed:\n%s", old.ID, log)
	}
}

func TestCrashedInstanceIsReplaced(t *testing.T) {
	t.Parallel()
	m := startManager(t, testConfig(t))
	m.Sync([]Spec{helperSpec("ep3", "f1", 1, map[string]string{"HELPER_CRASH_AFTER": "2"})})
	old := routable(t, m, "ep3", "f1", 1)[0]
	invoke(t, old.Addr)
	invoke(t, old.Addr) // the helper exits with status 3 after answering

	var in Instance
	waitFor(t, "a replacement", func() bool {
		got := routable(t, m, "ep3", "f1", 1)
		in = got[0]
		return in.ID != old.ID
	})
	if in.Restarts != 1 || in.LastError != "process exited: exit status 3" {
		t.Errorf("replacement = %+v, want 1 restart after exit status 3", in)
	}
	invoke(t, in.Addr) // the new incarnation serves
}

func TestUnhealthyInstanceIsKilledAndReplaced(t *testing.T) {
	t.Parallel()
	m := startManager(t, testConfig(t))
	m.Sync([]Spec{helperSpec("ep10", "f1", 1, map[string]string{"HELPER_SICK_AFTER": "1"})})
	old := routable(t, m, "ep10", "f1", 1)[0]
	invoke(t, old.Addr) // from now on its /ping answers 500, and it keeps running

	waitFor(t, "the sick instance to stop being routable", func() bool {
		in, ok := instance(m, old.ID)
		return !ok || !in.Routable
	})
	in := routable(t, m, "ep10", "f1", 1)[0]
	if in.ID == old.ID || in.Restarts != 1 {
		t.Errorf("replacement = %+v, want a new incarnation", in)
	}
	if want := "health check failed: GET /ping returned 500 Internal Server Error"; in.LastError != want {
		t.Errorf("LastError = %q, want %q", in.LastError, want)
	}
	if alive(old.PID) {
		t.Errorf("the sick process %d was not killed", old.PID)
	}
	if log := readFile(t, old.LogPath); !strings.Contains(log, "failed its health check (GET /ping returned 500 Internal Server Error); killing it") {
		t.Errorf("log does not say why it was killed:\n%s", log)
	}
}

func TestNeverHealthyInstanceFailsItsLaunch(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.StartupTimeout = 1500 * time.Millisecond
	m := startManager(t, cfg)
	// f2's container sets its own startup window, which wins over the config's.
	f2 := helperSpec("ep4", "f2", 1, map[string]string{"HELPER_NEVER_HEALTHY": "1"})
	f2.Container.ContainerStartupHealthCheckTimeoutInSeconds = 1
	m.Sync([]Spec{helperSpec("ep4", "f1", 1, map[string]string{"HELPER_NEVER_HEALTHY": "1"}), f2})

	var first Instance
	waitFor(t, "the first instance to start", func() bool {
		in, ok := instance(m, "ep4-f1-0-1")
		first = in
		return ok && in.PID != 0
	})
	var st FleetStatus
	waitFor(t, "LaunchFailed", func() bool {
		st = m.FleetStatus("ep4", "f1")
		return st.LaunchFailed
	})
	// The last ping error ends the reason: the helper's 503, unless a
	// loaded machine kept it from listening in time.
	want := regexp.MustCompile(`^Instance 0 of fleet f1 \(variant AllTraffic\) did not pass its health check within 1\.5s: ` +
		`(GET /ping returned 503 Service Unavailable|GET /ping: connect: connection refused|no answer yet)$`)
	if !want.MatchString(st.Reason) {
		t.Errorf("Reason = %q, want it to match %s", st.Reason, want)
	}
	if st.Healthy != 0 {
		t.Errorf("FleetStatus = %+v, want none healthy", st)
	}
	if alive(first.PID) {
		t.Errorf("the instance that failed its launch (pid %d) still runs", first.PID)
	}
	// The manager keeps trying, and the fleet stays LaunchFailed meanwhile.
	waitFor(t, "a second attempt", func() bool {
		in, ok := instance(m, "ep4-f1-0-2")
		return ok && in.Restarts == 1
	})
	if st := m.FleetStatus("ep4", "f1"); !st.LaunchFailed {
		t.Errorf("FleetStatus = %+v during the retry, want LaunchFailed", st)
	}

	waitFor(t, "LaunchFailed of f2", func() bool { return m.FleetStatus("ep4", "f2").LaunchFailed })
	if got, want := m.FleetStatus("ep4", "f2").Reason, "did not pass its health check within 1 second: "; !strings.Contains(got, want) {
		t.Errorf("f2: Reason = %q, want it to contain %q", got, want)
	}

	m.Sync(nil)
	waitFor(t, "the fleet to be gone", func() bool { return len(m.Instances()) == 0 })
	if st := m.FleetStatus("ep4", "f1"); st != (FleetStatus{}) {
		t.Errorf("FleetStatus of a removed fleet = %+v, want zero", st)
	}
}

func TestBadCommandsFailTheirLaunch(t *testing.T) {
	t.Parallel()
	m := startManager(t, testConfig(t))
	cases := []struct {
		name, image string
		env         map[string]string
		want        string
	}{
		{"missing file", "/nonexistent/model-server --port 1", nil,
			`Instance 0 of fleet missing-file (variant AllTraffic) could not start: cannot run "/nonexistent/model-server": stat /nonexistent/model-server: no such file or directory`},
		{"not in PATH", "kiln-no-such-model-server", nil,
			`could not start: cannot run "kiln-no-such-model-server": executable file not found in $PATH`},
		{"unbalanced quote", `serve "model`, nil, `could not start: cannot split Image "serve \"model" into words`},
		{"empty", "   ", nil, "could not start: Image is empty"},
		{"exits at once", selfImage(), map[string]string{helperModeVar: "model", "HELPER_EXIT": "3"},
			"exited before passing its health check: exit status 3. Last output: helper model starting, pid "},
	}
	var specs []Spec
	for _, c := range cases {
		s := helperSpec("ep5", strings.ReplaceAll(c.name, " ", "-"), 1, nil)
		s.Container.Image, s.Container.Environment = c.image, c.env
		specs = append(specs, s)
	}
	m.Sync(specs)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fleet := strings.ReplaceAll(c.name, " ", "-")
			var st FleetStatus
			waitFor(t, "LaunchFailed", func() bool {
				st = m.FleetStatus("ep5", fleet)
				return st.LaunchFailed
			})
			if !strings.Contains(st.Reason, c.want) {
				t.Errorf("Reason = %q, want it to contain %q", st.Reason, c.want)
			}
			if !strings.HasPrefix(st.Reason, "Instance 0 of fleet "+fleet+" (variant AllTraffic) ") {
				t.Errorf("Reason = %q, want it to name the instance", st.Reason)
			}
		})
	}
	t.Run("exit reason has the model's last words", func(t *testing.T) {
		st := m.FleetStatus("ep5", "exits-at-once")
		if !strings.HasSuffix(st.Reason, " | model file missing") {
			t.Errorf("Reason = %q, want it to end with the model's stderr", st.Reason)
		}
	})
	t.Run("log says why", func(t *testing.T) {
		logs := m.LogFiles("ep5")
		i := slices.IndexFunc(logs, func(p string) bool { return strings.Contains(p, "ep5-missing-file-0-") })
		if i < 0 {
			t.Fatalf("no log for the missing file in %q", logs)
		}
		if log := readFile(t, logs[i]); !strings.Contains(log, "could not start: cannot run \"/nonexistent/model-server\"") {
			t.Errorf("log = %q, want the reason", log)
		}
	})
}

// testDrainer records drains and holds each until released.
type testDrainer struct {
	m       atomic.Pointer[Manager]
	release chan struct{}
	calls   chan drainCall
}

type drainCall struct {
	id       string
	inst     Instance
	found    bool
	alive    bool
	ctxErr   error
	finished chan struct{}
}

func newTestDrainer() *testDrainer {
	return &testDrainer{release: make(chan struct{}), calls: make(chan drainCall, 10)}
}

func (d *testDrainer) Drain(ctx context.Context, id string) error {
	c := drainCall{id: id, ctxErr: ctx.Err()}
	if m := d.m.Load(); m != nil {
		c.inst, c.found = instance(m, id)
		c.alive = alive(c.inst.PID)
	}
	d.calls <- c
	select {
	case <-d.release:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func TestScaleDownDrainsThenTerminates(t *testing.T) {
	t.Parallel()
	d := newTestDrainer()
	cfg := testConfig(t)
	cfg.Drainer = d
	m := startManager(t, cfg)
	d.m.Store(m)

	spec := helperSpec("ep6", "f1", 2, nil)
	m.Sync([]Spec{spec})
	got := routable(t, m, "ep6", "f1", 2)
	keep, drop := got[0], got[1]

	spec.InstanceCount = 1
	m.Sync([]Spec{spec})
	var c drainCall
	select {
	case c = <-d.calls:
	case <-time.After(20 * time.Second):
		t.Fatal("Drain was not called")
	}
	if c.id != drop.ID {
		t.Fatalf("drained %s, want %s", c.id, drop.ID)
	}
	if !c.found || c.inst.Routable || c.inst.State != StateDraining || !c.alive || c.ctxErr != nil {
		t.Errorf("during Drain: instance %+v (found %v, alive %v, ctx %v); want it Draining, not routable, running, ctx live",
			c.inst, c.found, c.alive, c.ctxErr)
	}
	if log := readFile(t, drop.LogPath); strings.Contains(log, "SIGTERM") {
		t.Errorf("SIGTERM before the drain finished:\n%s", log)
	}
	close(d.release)

	waitFor(t, "the dropped instance to be gone", func() bool {
		_, ok := instance(m, drop.ID)
		return !ok && !alive(drop.PID)
	})
	log := readFile(t, drop.LogPath)
	term := strings.Index(log, drop.ID+": stopping: SIGTERM")
	got1 := strings.Index(log, "received SIGTERM, exiting")
	if term < 0 || got1 < term || !strings.Contains(log, drop.ID+": exited: exit status 0") {
		t.Errorf("log of the dropped instance does not show SIGTERM, then a clean exit:\n%s", log)
	}
	if in := routable(t, m, "ep6", "f1", 1)[0]; in.ID != keep.ID || in.PID != keep.PID {
		t.Errorf("instance 0 changed from %s to %s", keep.ID, in.ID)
	}
	select {
	case c := <-d.calls:
		t.Errorf("unexpected drain of %s", c.id)
	default:
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.StopTimeout = 500 * time.Millisecond
	m := startManager(t, cfg)
	m.Sync([]Spec{helperSpec("ep7", "f1", 1, map[string]string{"HELPER_IGNORE_TERM": "1"})})
	in := routable(t, m, "ep7", "f1", 1)[0]

	start := time.Now()
	m.Sync(nil)
	waitFor(t, "the instance to be killed", func() bool { return !alive(in.PID) })
	if elapsed := time.Since(start); elapsed < 500*time.Millisecond {
		t.Errorf("killed after %s, before StopTimeout", elapsed)
	}
	waitFor(t, "the instance to be forgotten", func() bool { return len(m.Instances()) == 0 })
	log := readFile(t, in.LogPath)
	for _, want := range []string{
		"stopping: SIGTERM", "received SIGTERM, ignoring it",
		"still running 500ms after SIGTERM: SIGKILL", "exited: signal: killed",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestRunEndStopsEveryProcess(t *testing.T) {
	t.Parallel()
	d := newTestDrainer()
	close(d.release)
	cfg := testConfig(t)
	cfg.StopTimeout = 500 * time.Millisecond
	cfg.Drainer = d
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.m.Store(m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	m.Sync([]Spec{
		helperSpec("ep8", "f1", 2, map[string]string{"HELPER_SPAWN_CHILD": "1"}),
		helperSpec("ep8", "f2", 1, map[string]string{"HELPER_IGNORE_TERM": "1"}),
	})
	insts := append(routable(t, m, "ep8", "f1", 2), routable(t, m, "ep8", "f2", 1)...)
	var children []int
	for _, in := range insts[:2] {
		children = append(children, invoke(t, in.Addr).Child)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	for _, in := range insts {
		if alive(in.PID) {
			t.Errorf("instance %s (pid %d) outlived Run", in.ID, in.PID)
		}
	}
	// A child got SIGKILL with its process group; it may take a moment to die.
	for _, pid := range children {
		waitFor(t, fmt.Sprintf("child %d to die", pid), func() bool { return !alive(pid) })
	}
	close(d.calls)
	var drained []string
	for c := range d.calls {
		if c.ctxErr != nil {
			t.Errorf("Drain(%s) got a done context: %v", c.id, c.ctxErr)
		}
		drained = append(drained, c.id)
	}
	slices.Sort(drained)
	if want := []string{insts[0].ID, insts[1].ID, insts[2].ID}; !slices.Equal(drained, want) {
		t.Errorf("drained %q, want %q", drained, want)
	}
	if pids, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg.LogDir), "run", "*.pid")); len(pids) != 0 {
		t.Errorf("PID files left: %q", pids)
	}
	if err := m.Run(context.Background()); err == nil {
		t.Error("a second Run returned nil")
	}
}

func TestAllowedCommands(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Another name for the allowed executable: not allowed, since a
	// multi-call binary behaves according to its name.
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(exe, alias); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	// sh alone allows scripts, not inline code; the pattern allows this
	// one command line.
	cfg.AllowedCommands = []string{exe, "sh", "sh -c 'echo from the shell; exit 4'"}
	m := startManager(t, cfg)

	allowed := helperSpec("ep9", "allowed", 1, nil)
	shell := helperSpec("ep9", "shell", 1, nil)
	shell.Container.Image = "sh -c 'echo from the shell; exit 4'"
	inline := helperSpec("ep9", "inline", 1, nil)
	inline.Container.Image = "sh -c 'echo any other code'"
	other := helperSpec("ep9", "other", 1, nil)
	other.Container.Image = "true"
	aliased := helperSpec("ep9", "alias", 1, nil)
	aliased.Container.Image = alias
	m.Sync([]Spec{allowed, shell, inline, other, aliased})

	routable(t, m, "ep9", "allowed", 1)
	for fleet, want := range map[string]string{
		"shell":  "exited before passing its health check: exit status 4. Last output: from the shell",
		"other":  `could not start: "true" (`,
		"alias":  fmt.Sprintf(`could not start: %q (%s) is not one of the commands this server is allowed to run`, alias, alias),
		"inline": `the allowed command "sh" allows sh to run a script file, not "-c"`,
	} {
		var st FleetStatus
		waitFor(t, "LaunchFailed of "+fleet, func() bool {
			st = m.FleetStatus("ep9", fleet)
			return st.LaunchFailed
		})
		if !strings.Contains(st.Reason, want) {
			t.Errorf("fleet %s: Reason = %q, want it to contain %q", fleet, st.Reason, want)
		}
	}
	if st := m.FleetStatus("ep9", "other"); !strings.Contains(st.Reason, ") is not one of the commands this server is allowed to run (--allow-command ") {
		t.Errorf("Reason = %q", st.Reason)
	}
}

func TestCanonicalPath(t *testing.T) {
	dir := t.TempDir()
	realDir := filepath.Join(dir, "real")
	if err := os.Mkdir(realDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(realDir, "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(realDir, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("tool", filepath.Join(realDir, "other-name")); err != nil {
		t.Fatal(err)
	}
	if a, b := canonicalPath(filepath.Join(dir, "link", "tool")), canonicalPath(filepath.Join(realDir, "tool")); a != b {
		t.Errorf("through a linked directory: %q != %q", a, b)
	}
	if a, b := canonicalPath(filepath.Join(realDir, "other-name")), canonicalPath(filepath.Join(realDir, "tool")); a == b {
		t.Errorf("a linked file has the same canonical path %q as its target", a)
	}
}

func TestLeftoversOfAnEarlierRunAreKilled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	runDir := filepath.Join(dir, "run")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := func(env ...string) *exec.Cmd {
		exe, _ := os.Executable()
		cmd := exec.Command(exe)
		cmd.Env = append([]string{helperModeVar + "=sleeper"}, env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	token := newToken()
	leftover := start(instanceTokenVar + "=" + token)
	// A process that took the PID of an instance that is long gone, and
	// one of another Kiln's instances, which has the same ID.
	bystander := start()
	neighbour := start("KILN_INSTANCE_ID=old-f1-0-7", instanceTokenVar+"="+newToken())
	for id, content := range map[string][]byte{
		"old-f1-0-7": pidFile(leftover.Process.Pid, token),
		"old-f1-1-3": pidFile(bystander.Process.Pid, newToken()),
		"old-f1-2-1": []byte("garbage"),
	} {
		if err := os.WriteFile(filepath.Join(runDir, id+".pid"), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The helpers' environments are theirs only once they have exec'd.
	for _, cmd := range []*exec.Cmd{leftover, neighbour} {
		waitFor(t, "a helper to exec", func() bool {
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid))
			return strings.Contains(string(env), instanceTokenVar+"=")
		})
	}

	if _, err := New(Config{LogDir: filepath.Join(dir, "logs")}); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- leftover.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.String() != "signal: killed" {
			t.Errorf("leftover ended with %v, want signal: killed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the leftover process was not killed")
	}
	if !alive(bystander.Process.Pid) || !alive(neighbour.Process.Pid) {
		t.Error("New killed a process that was not a leftover of its own")
	}
	if files, _ := os.ReadDir(runDir); len(files) != 0 {
		t.Errorf("PID files left: %v", files)
	}
}

// TestKilledKilnLeavesNoOrphan kills a process running a Manager with
// SIGKILL: its instance dies with it (Pdeathsig), and the child the instance
// started, which no signal reached, is killed by the next Manager's New.
func TestKilledKilnLeavesNoOrphan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exe, _ := os.Executable()
	kiln := exec.Command(exe)
	kiln.Env = append(os.Environ(), helperModeVar+"=manager", "HELPER_DIR="+dir)
	out, err := kiln.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := kiln.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	killKiln := func() { once.Do(func() { kiln.Process.Kill(); kiln.Wait() }) }
	t.Cleanup(func() {
		// Should the test stop early, still leave nothing behind.
		killKiln()
		New(Config{LogDir: filepath.Join(dir, "logs")})
	})

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var pid int
	var logPath string
	select {
	case line, ok := <-lines:
		if _, err := fmt.Sscanf(line, "instance %d %s", &pid, &logPath); !ok || err != nil {
			t.Fatalf("manager said %q (%v)", line, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the manager process did not start its instance")
	}
	match := regexp.MustCompile(`child pid (\d+)`).FindStringSubmatch(readFile(t, logPath))
	if match == nil {
		t.Fatalf("no child in the log:\n%s", readFile(t, logPath))
	}
	child, _ := strconv.Atoi(match[1])

	killKiln()
	for range lines {
	}
	waitFor(t, "the instance to die with its manager", func() bool { return !alive(pid) })
	if !alive(child) {
		t.Fatalf("the instance's child %d died too; nothing is left to clean up", child)
	}
	if _, err := New(Config{LogDir: filepath.Join(dir, "logs")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the orphaned child to be killed", func() bool { return !alive(child) })
}

func TestInstanceIDsAreNeverReused(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cfg.LogDir, "ep")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ep-f1-0-5.log", "ep-f1-0-x.log", "ep-f1-1-9.log", "ep-f1-0-12.txt", "ep-f1-0-3.log"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		k    slotKey
		want string
	}{
		{slotKey{"ep", "f1", 0}, "ep-f1-0-6"}, // after an earlier run's 5
		{slotKey{"ep", "f1", 0}, "ep-f1-0-7"},
		{slotKey{"ep", "f1", 1}, "ep-f1-1-10"},
		{slotKey{"other", "f1", 0}, "other-f1-0-1"},
		{slotKey{"a-b", "c", 0}, "a-b-c-0-1"},
		{slotKey{"a", "b-c", 0}, "a-b-c-0-2"}, // names that run together
	} {
		if got := m.nextIncarnation(c.k); got != c.want {
			t.Errorf("nextIncarnation(%v) = %q, want %q", c.k, got, c.want)
		}
	}
}

func TestNextBackoff(t *testing.T) {
	const initial, maxWait = time.Second, 30 * time.Second
	cases := []struct {
		prev, healthyFor, want time.Duration
	}{
		{0, 0, time.Second},
		{time.Second, 0, 2 * time.Second},
		{2 * time.Second, 0, 4 * time.Second},
		{16 * time.Second, 0, 30 * time.Second},
		{30 * time.Second, 0, 30 * time.Second},
		{30 * time.Second, 10 * time.Second, 30 * time.Second},
		{30 * time.Second, time.Minute, time.Second},
	}
	for _, c := range cases {
		if got := nextBackoff(c.prev, c.healthyFor, initial, maxWait); got != c.want {
			t.Errorf("nextBackoff(%s, healthy %s) = %s, want %s", c.prev, c.healthyFor, got, c.want)
		}
	}
}

func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	body := "[kiln] 2024 x: starting\n" + strings.Repeat("noise\n", 2000) + "one\n\ntwo\x1b[0m\nthree\nfour\nfive\n[kiln] 2024 x: exited: exit status 1\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := logTail(path), "one | two [0m | three | four | five"; got != want {
		t.Errorf("logTail = %q, want %q", got, want)
	}
	if got := logTail(filepath.Join(t.TempDir(), "missing")); got != "" {
		t.Errorf("logTail of a missing file = %q", got)
	}
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{
		240 * time.Second: "240 seconds", time.Second: "1 second", 700 * time.Millisecond: "700ms", 1500 * time.Millisecond: "1.5s",
	} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestConfigAndQueries(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without LogDir succeeded")
	}
	if _, err := New(Config{LogDir: t.TempDir(), PingInterval: -time.Second}); err == nil {
		t.Error("New with a negative PingInterval succeeded")
	}
	if _, err := New(Config{LogDir: t.TempDir(), AllowedCommands: []string{" "}}); err == nil {
		t.Error("New with an empty allowed command succeeded")
	}
	dir := t.TempDir()
	m, err := New(Config{LogDir: filepath.Join(dir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "run")); err != nil || !fi.IsDir() {
		t.Errorf("RunDir beside LogDir: %v", err)
	}
	m.Sync([]Spec{helperSpec("ep", "f1", 1, nil)}) // without Run: remembered, nothing started
	if got := m.Instances(); len(got) != 0 {
		t.Errorf("Instances before Run = %v", got)
	}
	if st := m.FleetStatus("ep", "f1"); st != (FleetStatus{}) {
		t.Errorf("FleetStatus before Run = %+v", st)
	}
	for _, name := range []string{"", ".", "..", "../etc", "a/b"} {
		if got := m.LogFiles(name); got != nil {
			t.Errorf("LogFiles(%q) = %q, want nil", name, got)
		}
	}
}

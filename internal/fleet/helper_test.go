package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kiln-serve/kiln"
)

// The test binary doubles as the processes the tests need, chosen by
// helperModeVar: a model server, a fleet manager (to be killed with
// SIGKILL), and a process that only sleeps.
const helperModeVar = "KILN_FLEET_TEST_MODE"

// secretVar is set in the test process; instances must not inherit it.
const secretVar = "KILN_FLEET_TEST_SECRET"

func TestMain(m *testing.M) {
	switch os.Getenv(helperModeVar) {
	case "model":
		helperModel()
		os.Exit(0)
	case "manager":
		helperManager()
		os.Exit(0)
	case "sleeper":
		time.Sleep(2 * time.Minute) // long enough for any test, short if one leaks it
		os.Exit(0)
	}
	os.Setenv(secretVar, "hunter2")
	goleak.VerifyTestMain(m)
}

// selfImage is the Image that runs this test binary.
func selfImage() string {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return "'" + strings.ReplaceAll(exe, "'", `'"'"'`) + "'"
}

// helperSpec is a fleet of helper model servers; env adds knobs:
//
//	HELPER_NEVER_HEALTHY=1  /ping answers 503
//	HELPER_CRASH_AFTER=N    exit with status 3 after N invocations
//	HELPER_SICK_AFTER=N     /ping answers 500 after N invocations
//	HELPER_EXIT=N           print "model file missing" and exit with status N at once
//	HELPER_IGNORE_TERM=1    ignore SIGTERM
//	HELPER_SPAWN_CHILD=1    start a child process (in the same process group)
func helperSpec(endpoint, fleetID string, count int, env map[string]string) Spec {
	e := map[string]string{helperModeVar: "model"}
	maps.Copy(e, env)
	return Spec{Endpoint: endpoint, Fleet: kiln.Fleet{
		ID: fleetID, VariantName: "AllTraffic", EndpointConfigName: endpoint + "-config", ModelName: "helper",
		Container:     kiln.ContainerDef{Image: selfImage(), Environment: e},
		InstanceCount: count, ActiveInstanceCount: count, TrafficShare: 1,
	}}
}

// helperModel is a model server that follows the container contract.
func helperModel() {
	fmt.Printf("helper model starting, pid %d\n", os.Getpid())
	if code := os.Getenv("HELPER_EXIT"); code != "" {
		fmt.Fprintln(os.Stderr, "model file missing")
		n, _ := strconv.Atoi(code)
		os.Exit(n)
	}
	child := 0
	if os.Getenv("HELPER_SPAWN_CHILD") == "1" {
		exe, _ := os.Executable()
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), helperModeVar+"=sleeper")
		if err := cmd.Start(); err != nil {
			fmt.Println("cannot start child:", err)
			os.Exit(1)
		}
		child = cmd.Process.Pid
		fmt.Printf("child pid %d\n", child)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)

	crashAfter, _ := strconv.ParseInt(os.Getenv("HELPER_CRASH_AFTER"), 10, 64)
	sickAfter, _ := strconv.ParseInt(os.Getenv("HELPER_SICK_AFTER"), 10, 64)
	var invocations atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("HELPER_NEVER_HEALTHY") == "1" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
		if sickAfter > 0 && invocations.Load() >= sickAfter {
			http.Error(w, "sick", http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /invocations", func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		json.NewEncoder(w).Encode(helperReply{Env: env, PID: os.Getpid(), Child: child})
		if n := invocations.Add(1); crashAfter > 0 && n >= crashAfter {
			w.(http.Flusher).Flush()
			fmt.Println("crashing after", n, "invocations")
			os.Exit(3)
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("SAGEMAKER_BIND_TO_PORT"))
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", l.Addr())
	go http.Serve(l, mux)
	for range sigs {
		if os.Getenv("HELPER_IGNORE_TERM") == "1" {
			fmt.Println("received SIGTERM, ignoring it")
			continue
		}
		fmt.Println("received SIGTERM, exiting")
		os.Exit(0)
	}
}

type helperReply struct {
	Env   map[string]string
	PID   int
	Child int
}

// helperManager runs a fleet manager with one instance that has a child,
// prints "instance <pid> <log path>" once it is routable, and waits to be
// killed.
func helperManager() {
	dir := os.Getenv("HELPER_DIR")
	m, err := New(Config{LogDir: filepath.Join(dir, "logs"), PingInterval: 50 * time.Millisecond, PingTimeout: 10 * time.Second})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	go m.Run(context.Background())
	m.Sync([]Spec{helperSpec("orphans", "f1", 1, map[string]string{"HELPER_SPAWN_CHILD": "1"})})
	for {
		for _, in := range m.Instances() {
			if in.Routable {
				fmt.Printf("instance %d %s\n", in.PID, in.LogPath)
				time.Sleep(time.Hour)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// invoke calls an instance's /invocations.
func invoke(t *testing.T, addr string) helperReply {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/invocations", "application/json", bytes.NewReader([]byte("{}")))
	if err != nil {
		t.Fatalf("invoke %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r helperReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("invoke %s: %v in %q", addr, err, body)
	}
	return r
}

// testConfig has short real durations for tests with processes.
func testConfig(t *testing.T) Config {
	return Config{
		LogDir:            filepath.Join(t.TempDir(), "logs"),
		PingInterval:      50 * time.Millisecond,
		PingTimeout:       5 * time.Second, // a loaded machine must not fail pings
		StartupTimeout:    20 * time.Second,
		StopTimeout:       5 * time.Second,
		DrainTimeout:      5 * time.Second,
		RestartBackoff:    100 * time.Millisecond,
		MaxRestartBackoff: 400 * time.Millisecond,
	}
}

// startManager runs a manager until the test ends, then checks that Run
// returns.
func startManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return 30s after its context ended")
		}
	})
	return m
}

// waitFor polls cond until it holds, or fails the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// routable waits until the fleet has n routable instances and returns them.
func routable(t *testing.T, m *Manager, endpoint, fleetID string, n int) []Instance {
	t.Helper()
	var got []Instance
	waitFor(t, fmt.Sprintf("%d routable instances of %s/%s", n, endpoint, fleetID), func() bool {
		got = got[:0]
		for _, in := range m.Instances() {
			if in.Endpoint == endpoint && in.FleetID == fleetID && in.Routable {
				got = append(got, in)
			}
		}
		return len(got) == n
	})
	return got
}

// instance returns the instance with the given ID, if the manager has it.
func instance(m *Manager, id string) (Instance, bool) {
	for _, in := range m.Instances() {
		if in.ID == id {
			return in, true
		}
	}
	return Instance{}, false
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api/client"
)

// kilnBin is the kiln binary built once for the whole package.
var kilnBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kiln-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Searchable by all: Kiln running as root starts instances as nobody,
	// which must be able to run this binary as the demo model.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kilnBin = filepath.Join(dir, "kiln")
	build := exec.Command("go", "build", "-o", kilnBin, "../../cmd/kiln")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build kiln:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// kilnProc is one running `kiln serve`.
type kilnProc struct {
	t       testing.TB
	cmd     *exec.Cmd
	addr    string
	dataDir string
	url     string
	client  *client.Client
	logs    *syncBuffer
	done    chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startKiln runs `kiln serve` on dataDir (a new temp dir if empty) and waits
// until it answers /healthz.
func startKiln(t testing.TB, dataDir string, extra ...string) *kilnProc {
	t.Helper()
	return startKilnWith(t, dataDir, kilnOpts{}, extra...)
}

// kilnOpts are the less common settings of a started kiln.
type kilnOpts struct {
	// https means kiln serves TLS (extra has --tls-cert and --tls-key);
	// httpClient then trusts its certificate.
	https      bool
	httpClient *http.Client
	// env is kiln's environment; nil inherits the test's.
	env []string
	// configure may change the command (its environment, its user) before
	// it starts.
	configure func(*exec.Cmd)
}

func startKilnWith(t testing.TB, dataDir string, o kilnOpts, extra ...string) *kilnProc {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	hc := o.httpClient
	if hc == nil {
		hc = http.DefaultClient
	}
	scheme := "http://"
	if o.https {
		scheme = "https://"
	}
	addr := freeAddr(t)
	args := append([]string{"serve", "--addr", addr, "--data-dir", dataDir, "--log-level", "debug"}, extra...)
	cmd := exec.Command(kilnBin, args...)
	cmd.Env = o.env
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if o.configure != nil {
		o.configure(cmd)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kiln: %v", err)
	}
	p := &kilnProc{t: t, cmd: cmd, addr: addr, dataDir: dataDir, url: scheme + addr, logs: logs, done: make(chan struct{})}
	p.client = &client.Client{BaseURL: p.url, HTTP: &http.Client{Timeout: 30 * time.Second, Transport: hc.Transport}}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("kiln log:\n%s", tail(logs.String(), 8000))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("kiln exited at start:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kiln did not answer /healthz within 20s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// stop ends kiln gracefully (SIGTERM) and waits for it.
func (p *kilnProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(45 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends kiln with SIGKILL.
func (p *kilnProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// cli runs a kiln client command against this server and returns stdout.
func (p *kilnProc) cli(args ...string) (string, error) {
	cmd := exec.Command(kilnBin, append(args, "--server", p.url)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kiln %s: %v: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

func (p *kilnProc) mustCLI(args ...string) string {
	p.t.Helper()
	out, err := p.cli(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// invokeResult is what one invocation returned.
type invokeResult struct {
	status   int
	variant  string
	version  string
	instance string
	body     string
}

func (p *kilnProc) invoke(endpoint string, body string) (invokeResult, error) {
	resp, err := http.Post(p.url+"/endpoints/"+endpoint+"/invocations", "application/json", strings.NewReader(body))
	if err != nil {
		return invokeResult{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := invokeResult{status: resp.StatusCode, variant: resp.Header.Get("X-Amzn-Invoked-Production-Variant"), body: string(b)}
	var out struct {
		ModelVersion string `json:"model_version"`
		Instance     string `json:"instance"`
	}
	if json.Unmarshal(b, &out) == nil {
		r.version, r.instance = out.ModelVersion, out.Instance
	}
	return r, nil
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *kilnProc) endpoint(name string) kiln.Endpoint {
	p.t.Helper()
	ep, err := p.client.GetEndpoint(context.Background(), name)
	if err != nil {
		p.t.Fatalf("describe %s: %v", name, err)
	}
	return *ep
}

func (p *kilnProc) waitInService(name string, timeout time.Duration) {
	p.t.Helper()
	waitFor(p.t, timeout, name+" InService", func() bool {
		ep, err := p.client.GetEndpoint(context.Background(), name)
		if err != nil {
			return false
		}
		if ep.EndpointStatus == kiln.StatusFailed {
			p.t.Fatalf("endpoint %s failed: %s", name, ep.FailureReason)
		}
		return ep.EndpointStatus == kiln.StatusInService && ep.Deployment == nil
	})
}

// demoYAML declares models, configs and an endpoint of the demo model.
func demoYAML(endpoint string, instances int) string {
	return demoYAMLOn(endpoint, instances, "v1")
}

// demoYAMLOn is demoYAML with the endpoint on config NAME-<initial>.
func demoYAMLOn(endpoint string, instances int, initial string) string {
	return fmt.Sprintf(`models:
  - ModelName: %[1]s-v1
    PrimaryContainer:
      Image: %[2]s demo-model
      Environment: {KILN_DEMO_VERSION: v1}
  - ModelName: %[1]s-v2
    PrimaryContainer:
      Image: %[2]s demo-model
      Environment: {KILN_DEMO_VERSION: v2}
  - ModelName: %[1]s-bad
    PrimaryContainer:
      Image: %[2]s demo-model
      Environment: {KILN_DEMO_VERSION: bad, KILN_DEMO_ERROR_RATE: "1"}
endpointConfigs:
  - EndpointConfigName: %[1]s-v1
    ProductionVariants:
      - {VariantName: AllTraffic, ModelName: %[1]s-v1, InitialInstanceCount: %[3]d, InstanceType: ml.m5.large}
  - EndpointConfigName: %[1]s-v2
    ProductionVariants:
      - {VariantName: AllTraffic, ModelName: %[1]s-v2, InitialInstanceCount: %[3]d, InstanceType: ml.m5.large}
  - EndpointConfigName: %[1]s-bad
    ProductionVariants:
      - {VariantName: AllTraffic, ModelName: %[1]s-bad, InitialInstanceCount: %[3]d, InstanceType: ml.m5.large}
endpoints:
  - EndpointName: %[1]s
    EndpointConfigName: %[1]s-%[4]s
`, endpoint, kilnBin, instances, initial)
}

func (p *kilnProc) applyYAML(yaml string) string {
	p.t.Helper()
	f := filepath.Join(p.t.TempDir(), "kiln.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		p.t.Fatal(err)
	}
	return p.mustCLI("apply", "-f", f)
}

// processAlive reports whether pid is a running (not zombie) process.
func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	if i := strings.LastIndexByte(line, ')'); i >= 0 && i+2 < len(line) {
		return line[i+2] != 'Z'
	}
	return true
}

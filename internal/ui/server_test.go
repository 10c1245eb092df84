package ui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/server"
	"github.com/kiln-serve/kiln/internal/ui"
)

// modelEnv makes the test binary serve as a model instead of running tests,
// so that the tests run real instances without building anything else.
const modelEnv = "KILN_UI_TEST_MODEL"

func TestMain(m *testing.M) {
	if os.Getenv(modelEnv) != "" {
		serveModel()
		return
	}
	os.Exit(m.Run())
}

// serveModel is the inference container contract at its smallest: GET /ping
// and POST /invocations on $SAGEMAKER_BIND_TO_PORT. With KILN_UI_TEST_MODEL=fail
// every invocation fails with 500.
func serveModel() {
	fail := os.Getenv(modelEnv) == "fail"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("POST /invocations", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if fail {
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("SAGEMAKER_BIND_TO_PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.Serve(ln, mux)
}

// kilnServer is a real Kiln running in the test process.
type kilnServer struct {
	srv *server.Server
	svc kiln.Service
	url string
}

// startServer runs a real server (store, controller, fleet, gateway, alarm
// engine) until the test ends.
func startServer(t *testing.T) *kilnServer {
	t.Helper()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), StopTimeout: 5 * time.Second, PingInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("server.Close: %v", err)
		}
	})
	if err := srv.Run(context.Background()); err != nil {
		t.Fatalf("server.Run: %v", err)
	}
	return &kilnServer{srv: srv, svc: srv.Service(), url: "http://" + srv.Addr()}
}

// createEndpoint makes a model of the test binary, a config and an endpoint
// of n instances, with the deployment config dc.
func (k *kilnServer) createEndpoint(t *testing.T, name string, n int, dc *kiln.DeploymentConfig) {
	t.Helper()
	ctx := context.Background()
	for _, v := range []struct{ suffix, mode string }{{"v1", "ok"}, {"bad", "fail"}} {
		_, err := k.svc.CreateModel(ctx, &kiln.Model{ModelName: name + "-" + v.suffix, PrimaryContainer: &kiln.ContainerDef{
			Image: os.Args[0], Environment: map[string]string{modelEnv: v.mode},
		}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = k.svc.CreateEndpointConfig(ctx, &kiln.EndpointConfig{EndpointConfigName: name + "-" + v.suffix, ProductionVariants: []kiln.ProductionVariant{
			{VariantName: "AllTraffic", ModelName: name + "-" + v.suffix, InitialInstanceCount: n, InstanceType: "ml.m5.large"},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := k.svc.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: name, EndpointConfigName: name + "-v1", DeploymentConfig: dc}); err != nil {
		t.Fatal(err)
	}
}

func (k *kilnServer) waitInService(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ep, err := k.svc.GetEndpoint(context.Background(), name)
		if err == nil && ep.EndpointStatus == kiln.StatusInService && ep.Deployment == nil {
			return
		}
		if err == nil && ep.EndpointStatus == kiln.StatusFailed {
			t.Fatalf("endpoint %s failed: %s", name, ep.FailureReason)
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint %s not InService after 30s: %+v %v", name, ep, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (k *kilnServer) invoke(t *testing.T, name string) int {
	t.Helper()
	resp, err := http.Post(k.url+"/endpoints/"+name+"/invocations", "application/json", strings.NewReader(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// sseReader reads server-sent events.
type sseReader struct {
	t  *testing.T
	sc *bufio.Scanner
}

func newSSEReader(t *testing.T, r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	return &sseReader{t: t, sc: sc}
}

// next returns the next event's name and data, skipping fields such as retry.
func (s *sseReader) next() (string, string) {
	s.t.Helper()
	var event, data string
	for s.sc.Scan() {
		line := s.sc.Text()
		if line == "" {
			if data != "" {
				return event, data
			}
			continue
		}
		switch k, v, _ := strings.Cut(line, ": "); k {
		case "event":
			event = v
		case "data":
			data += v
		}
	}
	s.t.Fatalf("the event stream ended: %v", s.sc.Err())
	return "", ""
}

// nextSnapshot returns the next event, which must be a snapshot.
func (s *sseReader) nextSnapshot() ui.Snapshot {
	s.t.Helper()
	event, data := s.next()
	if event != "snapshot" {
		s.t.Fatalf("got event %q (%s), want snapshot", event, data)
	}
	var snap ui.Snapshot
	if err := json.Unmarshal([]byte(data), &snap); err != nil {
		s.t.Fatalf("snapshot is not JSON: %v\n%s", err, data)
	}
	return snap
}

// openEvents opens the live stream of endpoint on a dashboard at base.
func openEvents(t *testing.T, ctx context.Context, base, endpoint string) (*http.Response, *sseReader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/ui/api/events?endpoint="+endpoint, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET events: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	return resp, newSSEReader(t, resp.Body)
}

func approx(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func getBody(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

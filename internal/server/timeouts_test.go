package server_test

import (
	"bufio"
	"context"
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
)

// modelEnv makes the test binary serve as a model instead of running tests,
// so that the tests run real instances without building anything else.
const modelEnv = "KILN_SERVER_TEST_MODEL"

func TestMain(m *testing.M) {
	if os.Getenv(modelEnv) != "" {
		serveModel()
		return
	}
	os.Exit(m.Run())
}

// serveModel serves GET /ping and POST /invocations; an invocation with
// Accept: stream is answered with a chunk every 100 ms for a second.
func serveModel() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("POST /invocations", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if n, cut := map[string]int{"cut early": 7, "cut late": 64 << 10}[r.Header.Get("Accept")]; cut {
			// A Content-Length, then less than it, then the end.
			conn, bw, err := http.NewResponseController(w).Hijack()
			if err == nil {
				fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n%s", strings.Repeat("x", n))
				bw.Flush()
				conn.Close()
			}
			return
		}
		if r.Header.Get("Accept") == "stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 10 {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
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

// bound is every timeout of the test server: short, so that a slow client
// is cut well before it would finish.
const bound = 400 * time.Millisecond

// startServer runs a real Kiln with short timeouts and an endpoint "ep" of
// one instance of the test binary.
func startServer(t *testing.T) string {
	addr, _ := startKiln(t)
	return addr
}

func startKiln(t *testing.T) (string, kiln.Service) {
	t.Helper()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), StopTimeout: 5 * time.Second,
		PingInterval:  100 * time.Millisecond,
		HeaderTimeout: bound, BodyTimeout: bound, InvokeBodyTimeout: bound, WriteTimeout: bound, IdleTimeout: 10 * bound})
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
	svc := srv.Service()
	bg := context.Background()
	if _, err := svc.CreateModel(bg, &kiln.Model{ModelName: "m", PrimaryContainer: &kiln.ContainerDef{
		Image: os.Args[0], Environment: map[string]string{modelEnv: "1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateEndpointConfig(bg, &kiln.EndpointConfig{EndpointConfigName: "c", ProductionVariants: []kiln.ProductionVariant{
		{VariantName: "AllTraffic", ModelName: "m", InitialInstanceCount: 1, InstanceType: "ml.m5.large"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateEndpoint(bg, kiln.CreateEndpointInput{EndpointName: "ep", EndpointConfigName: "c"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ep, err := svc.GetEndpoint(bg, "ep")
		if err == nil && ep.EndpointStatus == kiln.StatusInService {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint not InService after 30s: %+v %v", ep, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return srv.Addr(), svc
}

const invocation = "POST /endpoints/ep/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

// TestSlowClientsAreCut: a client that sends a request at one byte per
// 100 ms loses its connection once the timeout of what it is sending has
// passed (400 ms here), long before it would have sent it all (8 s or
// more): on a fresh connection served by net/http, on a connection the
// gateway took over, and on one it handed back to net/http.
func TestSlowClientsAreCut(t *testing.T) {
	addr := startServer(t)
	pad := strings.Repeat("a", 80)
	for _, tt := range []struct {
		name string
		// first is sent at once (after an invocation when takenOver), then
		// slow a byte at a time.
		takenOver   bool
		first, slow string
	}{
		{"head of a fresh connection", false, "", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + pad + "\r\n\r\n"},
		{"v1 body", false, "POST /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 82\r\n\r\n", `"` + pad + `"`},
		{"invocation body", false, "POST /endpoints/ep/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 82\r\n\r\n", `"` + pad + `"`},
		{"invocation body to an unknown endpoint", false, "POST /endpoints/nope/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 82\r\n\r\n", `"` + pad + `"`},
		{"head on a taken-over connection", true, "", "POST /endpoints/ep/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + pad + "\r\n\r\n"},
		{"invocation body on a taken-over connection", true, "POST /endpoints/ep/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 82\r\n\r\n", `"` + pad + `"`},
		{"v1 body on a handed-back connection", true, "POST /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 82\r\n\r\n", `"` + pad + `"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			if tt.takenOver {
				io.WriteString(c, invocation)
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				res, err := http.ReadResponse(br, nil)
				if err != nil || res.StatusCode != 200 {
					t.Fatalf("first invocation: %v %v", res, err)
				}
				io.Copy(io.Discard, res.Body)
			}
			// What the server sends (an error, then the end of the
			// connection) is read until the connection ends.
			closed := make(chan string, 1)
			go func() {
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				b, err := io.ReadAll(br)
				closed <- fmt.Sprintf("%q, %v", b, err)
			}()
			io.WriteString(c, tt.first)
			for i := range len(tt.slow) {
				select {
				case got := <-closed:
					t.Logf("cut after %d of %d bytes; the server sent %s", i, len(tt.slow), got)
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte{tt.slow[i]}); err != nil {
					t.Logf("cut after %d of %d bytes: %v", i, len(tt.slow), err)
					return
				}
			}
			t.Errorf("the server let the client send all %d bytes at one a 100 ms; want the connection cut after about %s", len(tt.slow), bound)
		})
	}
}

// TestStreamsOutlastTimeouts: the timeouts bound waits, not answers: the
// dashboard's live stream and a streamed invocation go on for longer than
// every timeout.
func TestStreamsOutlastTimeouts(t *testing.T) {
	addr := startServer(t)
	t.Run("dashboard events", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/ui/api/events?endpoint=ep", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET events: %d", res.StatusCode)
		}
		start := time.Now()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		events := 0
		for events < 3 && sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: snapshot") {
				events++
			}
		}
		if events < 3 {
			t.Fatalf("the stream ended after %d snapshots and %s: %v", events, time.Since(start), sc.Err())
		}
	})
	t.Run("streamed invocation", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/endpoints/ep/invocations", strings.NewReader("{}"))
		req.Header.Set("Accept", "stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != 200 || !strings.Contains(string(b), "data: 9") {
			t.Fatalf("got %d %q %v; want all 10 events", res.StatusCode, b, err)
		}
	})
}

// TestCutShortAnswerIsAModelError: a model that breaks off an answer it
// gave a Content-Length gets the client a 424 ModelError when none of the
// answer had gone out, and a connection cut before the body's end when
// some had; both are recorded in the endpoint's metrics as model errors,
// not as successes.
func TestCutShortAnswerIsAModelError(t *testing.T) {
	addr, svc := startKiln(t)
	start := time.Now()
	for _, accept := range []string{"cut early", "cut late"} {
		req, _ := http.NewRequest("POST", "http://"+addr+"/endpoints/ep/invocations", strings.NewReader("{}"))
		req.Header.Set("Accept", accept)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", accept, err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		switch accept {
		case "cut early":
			if res.StatusCode != http.StatusFailedDependency || err != nil || !strings.Contains(string(b), "ModelError") {
				t.Errorf("%s: %d %q %v; want a whole 424 ModelError", accept, res.StatusCode, b, err)
			}
		case "cut late":
			if res.StatusCode != 200 || err == nil {
				t.Errorf("%s: %d, %d bytes, %v; want 200 and an error before the body's end", accept, res.StatusCode, len(b), err)
			}
		}
	}
	sum := func(metric string) float64 {
		pts, err := svc.GetMetricStatistics(context.Background(), kiln.MetricQuery{
			Namespace: "AWS/SageMaker", MetricName: metric, Statistic: "Sum", Period: 1,
			Dimensions: []kiln.Dimension{{Name: "EndpointName", Value: "ep"}},
			StartTime:  start.Add(-time.Minute), EndTime: time.Now().Add(time.Minute),
		})
		if err != nil {
			t.Fatalf("%s: %v", metric, err)
		}
		total := 0.0
		for _, p := range pts {
			total += p.Value
		}
		return total
	}
	// The metrics of the current second are complete when it ends.
	deadline := time.Now().Add(10 * time.Second)
	for sum("Invocations") < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	for metric, want := range map[string]float64{"Invocations": 2, "InvocationModelErrors": 2, "Invocation4XXErrors": 2} {
		if got := sum(metric); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
}

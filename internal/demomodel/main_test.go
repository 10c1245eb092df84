package demomodel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitHealthy polls /ping until it answers 200 or Main has returned.
func waitHealthy(t *testing.T, base string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("Main returned before becoming healthy: %v", err)
		default:
		}
		resp, err := http.Get(base + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("demo model not healthy within 5s")
}

func waitReturn(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Main did not return within 10s")
		return nil
	}
}

func TestMainServesAndStopsOnCancel(t *testing.T) {
	port := freePort(t)
	path := writeModel(t, twoFeatureModel)
	env := map[string]string{
		EnvBindToPort:   strconv.Itoa(port),
		EnvPort:         "1", // ignored: SAGEMAKER_BIND_TO_PORT wins
		EnvModelDataURL: "file://" + path,
		EnvInstanceID:   "i-main",
		EnvVersion:      "v9",
		EnvSeed:         "5",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Main(ctx, envOf(env), &stdout, &stderr) }()

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitHealthy(t, base, done)
	resp := post(t, base, "application/json", `[1, 0]`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	got := decode[response](t, resp.Body)
	if len(got.Predictions) != 1 || got.Predictions[0].Label != "dog" || got.ModelVersion != "v9" || got.Instance != "i-main" {
		t.Errorf("answer %+v, want one dog from v9 on i-main", got)
	}
	resp.Body.Close()

	cancel()
	if err := waitReturn(t, done); err != nil {
		t.Fatalf("Main: %v, want nil after cancel", err)
	}
	if _, err := http.Get(base + "/ping"); err == nil {
		t.Error("GET /ping answered after Main returned")
	}

	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("stderr has %d lines, want a start and a stop line:\n%s", len(lines), stderr.String())
	}
	for _, want := range []string{`msg="demo model listening"`, "addr=127.0.0.1:" + strconv.Itoa(port), "version=v9", "instance=i-main", "features=2", "seed=5"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("start line %q lacks %q", lines[0], want)
		}
	}
	for _, want := range []string{`msg="demo model stopped"`, "invocations=1"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("stop line %q lacks %q", lines[1], want)
		}
	}
}

func TestMainRejectsBadConfig(t *testing.T) {
	var stderr bytes.Buffer
	err := Main(context.Background(), envOf(map[string]string{EnvErrorRate: "2", EnvLatencyMS: "-1"}), io.Discard, &stderr)
	if err == nil {
		t.Fatal("Main: nil error, want a configuration error")
	}
	for _, want := range []string{EnvErrorRate, EnvLatencyMS} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestMainRejectsBadModelData(t *testing.T) {
	env := map[string]string{EnvBindToPort: "0", EnvModelDataURL: writeModel(t, `{"weights": []}`)}
	err := Main(context.Background(), envOf(env), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "model has no weights") {
		t.Fatalf("Main: %v, want the model data rejected", err)
	}
}

func TestMainCrashAfter(t *testing.T) {
	port := freePort(t)
	env := map[string]string{EnvBindToPort: strconv.Itoa(port), EnvCrashAfter: "2", EnvStreamDelayMS: "1"}
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Main(context.Background(), envOf(env), io.Discard, &stderr) }()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitHealthy(t, base, done)

	if resp := post(t, base, "application/json", rowPos); resp.StatusCode != http.StatusOK {
		t.Fatalf("invocation 1: status %d, want 200", resp.StatusCode)
	}
	// The crashing invocation is a stream: its answer must still arrive whole.
	resp := post(t, base, "application/json", "["+rowPos+","+rowNeg+"]", "Accept", "text/event-stream")
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("invocation 2: read: %v", err)
	}
	if n := strings.Count(string(body), "data: "); n != 2 {
		t.Errorf("invocation 2: %d events, want 2:\n%s", n, body)
	}

	err = waitReturn(t, done)
	if !errors.Is(err, ErrCrashed) {
		t.Fatalf("Main: %v, want ErrCrashed", err)
	}
	if !strings.Contains(err.Error(), "after 2 invocations") {
		t.Errorf("error %q, want it to say after 2 invocations", err)
	}
	if !strings.Contains(stderr.String(), `msg="demo model crashed"`) {
		t.Errorf("stderr lacks the crash line:\n%s", stderr.String())
	}
	if _, err := http.Get(base + "/ping"); err == nil {
		t.Error("GET /ping answered after the crash")
	}
}

// TestRunFinishesInFlightRequests holds an invocation in its latency while
// the context is cancelled: it must still be answered before run returns.
func TestRunFinishesInFlightRequests(t *testing.T) {
	gate := newGateSleep()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Latency: time.Hour, Sleep: gate.sleep}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, slog.New(slog.DiscardHandler), func(context.Context) (net.Listener, error) { return ln, nil })
	}()
	base := "http://" + ln.Addr().String()
	waitHealthy(t, base, done)

	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post(base+"/invocations", "application/json", strings.NewReader(rowPos))
		if err != nil {
			t.Errorf("in-flight invocation: %v", err)
			close(answered)
			return
		}
		answered <- resp
	}()
	<-gate.asleep // the invocation is in flight
	cancel()

	// Shutdown has closed the listener once new connections are refused.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 5s after cancel")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("run returned %v with a request in flight", err)
	default:
	}

	gate.release <- struct{}{}
	resp, ok := <-answered
	if !ok {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("in-flight invocation: status %d, want 200", resp.StatusCode)
	}
	if err := waitReturn(t, done); err != nil {
		t.Errorf("run: %v, want nil", err)
	}
}

func TestRunCancelledDuringStartupDelay(t *testing.T) {
	gate := newGateSleep()
	ctx, cancel := context.WithCancel(context.Background())
	listened := false
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, Config{StartupDelay: time.Minute, Sleep: gate.sleep}, slog.New(slog.DiscardHandler),
			func(context.Context) (net.Listener, error) {
				listened = true
				return nil, errors.New("unexpected listen")
			})
	}()
	if d := <-gate.asleep; d != time.Minute {
		t.Errorf("startup delay %v, want 1m", d)
	}
	cancel()
	if err := waitReturn(t, done); err != nil {
		t.Errorf("run: %v, want nil", err)
	}
	if listened {
		t.Error("run listened although it was cancelled during the startup delay")
	}
}

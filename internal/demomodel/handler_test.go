package demomodel

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Scores of the default model for rows used throughout the tests.
var (
	rowPos   = "[1,0,0,0]" // z = 0.8 - 0.1 = 0.7
	rowNeg   = "[0,1,0,0]" // z = -0.4 - 0.1 = -0.5
	scorePos = 1 / (1 + math.Exp(-0.7))
	scoreNeg = 1 / (1 + math.Exp(0.5))
)

func newTestServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, contentType, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/invocations", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /invocations: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decode[T any](t *testing.T, r io.Reader) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(r).Decode(&v); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return v
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestInvocationInputForms(t *testing.T) {
	srv := newTestServer(t, Config{Version: "v7", InstanceID: "i-1"})
	both := []Prediction{{Score: scorePos, Label: "pos"}, {Score: scoreNeg, Label: "neg"}}
	tests := []struct {
		name        string
		contentType string
		body        string
		want        []Prediction
	}{
		{"instances object", "application/json", `{"instances": [` + rowPos + `,` + rowNeg + `]}`, both},
		{"instances with other fields", "application/json", `{"parameters": {}, "instances": [` + rowPos + `]}`, both[:1]},
		{"bare rows", "application/json", `[` + rowPos + `,` + rowNeg + `]`, both},
		{"single row", "application/json", rowNeg, both[1:]},
		{"json with charset", "application/json; charset=utf-8", rowPos, both[:1]},
		{"no content type is json", "", `[` + rowPos + `]`, both[:1]},
		{"csv", "text/csv", "1,0,0,0\n0, 1, 0, 0\n", both},
		{"csv blank lines and fractions", "text/csv", "\n1.0,0,0,0e0\n\n0,1,0,-0\n", both},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, srv.URL, tt.contentType, tt.body)
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), want 200", resp.StatusCode, b)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q, want application/json", got)
			}
			if got := resp.Header.Get(VersionHeader); got != "v7" {
				t.Errorf("%s %q, want v7", VersionHeader, got)
			}
			got := decode[response](t, resp.Body)
			if got.ModelVersion != "v7" || got.Instance != "i-1" {
				t.Errorf("model_version %q instance %q, want v7 i-1", got.ModelVersion, got.Instance)
			}
			if len(got.Predictions) != len(tt.want) {
				t.Fatalf("got %d predictions, want %d", len(got.Predictions), len(tt.want))
			}
			for i, p := range got.Predictions {
				if !near(p.Score, tt.want[i].Score) || p.Label != tt.want[i].Label {
					t.Errorf("prediction %d = %+v, want %+v", i, p, tt.want[i])
				}
			}
		})
	}
}

func TestInvocationDefaults(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp := post(t, srv.URL, "application/json", rowPos)
	if got := resp.Header.Get(VersionHeader); got != "v1" {
		t.Errorf("%s %q, want v1", VersionHeader, got)
	}
	// The field is present even when empty, so the shape never changes.
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if raw["model_version"] != "v1" {
		t.Errorf("model_version %v, want v1", raw["model_version"])
	}
	if v, ok := raw["instance"]; !ok || v != "" {
		t.Errorf(`instance = %v (present %v), want ""`, v, ok)
	}
}

func TestInvocationBadInput(t *testing.T) {
	srv := newTestServer(t, Config{Version: "v2", InstanceID: "i-9"})
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantKind    string
		wantMessage string
	}{
		{"too few features", "application/json", `[[1,2,3]]`, 400, "invalid_input", "row 1 has 3 features; the model expects 4"},
		{"second row too long", "application/json", `{"instances":[[1,2,3,4],[1,2,3,4,5]]}`, 400, "invalid_input", "row 2 has 5 features"},
		{"csv wrong count", "text/csv", "1,2,3,4\n1,2\n", 400, "invalid_input", "row 2 has 2 features"},
		{"bad json", "application/json", `[[1,2,3,4]`, 400, "invalid_input", "bad JSON"},
		{"trailing data", "application/json", `[1,2,3,4] [5]`, 400, "invalid_input", "unexpected data after"},
		{"null feature", "application/json", `[1,null,3,4]`, 400, "invalid_input", "row 1, feature 2: null is not a number"},
		{"string feature", "application/json", `[[1,2,3,4],[1,"x",3,4]]`, 400, "invalid_input", `row 2, feature 2: "x" is not a number`},
		{"huge number", "application/json", `[1e400,0,0,0]`, 400, "invalid_input", "not a finite number"},
		{"mixed rows", "application/json", `[[1,2,3,4], 5]`, 400, "invalid_input", "item 2 of the body is not a list"},
		{"object without instances", "application/json", `{"inputs":[[1,2,3,4]]}`, 400, "invalid_input", `no "instances" field`},
		{"instances not a list", "application/json", `{"instances":5}`, 400, "invalid_input", `"instances" must be a list`},
		{"flat instances", "application/json", `{"instances":[1,2,3,4]}`, 400, "invalid_input", `item 1 of "instances" is not a list`},
		{"scalar body", "application/json", `42`, 400, "invalid_input", "JSON body must be"},
		{"empty body", "application/json", ``, 400, "invalid_input", "body is empty"},
		{"empty list", "application/json", `[]`, 400, "invalid_input", "no rows"},
		{"empty instances", "application/json", `{"instances":[]}`, 400, "invalid_input", "no rows"},
		{"csv not a number", "text/csv", "1,2,abc,4", 400, "invalid_input", `row 1, column 3: "abc" is not a finite number`},
		{"csv NaN", "text/csv", "1,2,NaN,4", 400, "invalid_input", "not a finite number"},
		{"csv bad quoting", "text/csv", "1,\"2,3,4", 400, "invalid_input", "bad CSV"},
		{"csv empty", "text/csv", "", 400, "invalid_input", "no rows"},
		{"unsupported type", "text/plain", "1,2,3,4", 400, "unsupported_content_type", `unsupported Content-Type "text/plain"`},
		{"unparsable type", "application/json; =", "[1,2,3,4]", 400, "unsupported_content_type", "cannot parse Content-Type"},
		{"too large", "application/json", strings.Repeat(" ", MaxBodyBytes+1), 413, "body_too_large", "larger than 6291456 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, srv.URL, tt.contentType, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q, want application/json", got)
			}
			if got := resp.Header.Get(VersionHeader); got != "v2" {
				t.Errorf("%s %q, want v2", VersionHeader, got)
			}
			got := decode[errorBody](t, resp.Body)
			if got.Error != tt.wantKind {
				t.Errorf("error %q, want %q", got.Error, tt.wantKind)
			}
			if !strings.Contains(got.Message, tt.wantMessage) {
				t.Errorf("message %q, want it to contain %q", got.Message, tt.wantMessage)
			}
			if got.ModelVersion != "v2" || got.Instance != "i-9" {
				t.Errorf("model_version %q instance %q, want v2 i-9", got.ModelVersion, got.Instance)
			}
		})
	}
}

func TestOverflowingRowIsBadInput(t *testing.T) {
	srv := newTestServer(t, Config{Model: &Model{Weights: []float64{2, -2}}})
	resp := post(t, srv.URL, "application/json", `[1.7e308, -1.7e308]`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 (both terms push the same way)", resp.StatusCode)
	}
	resp = post(t, srv.URL, "application/json", `[1.7e308, 1.7e308]`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400 for +Inf - Inf", resp.StatusCode)
	}
	if got := decode[errorBody](t, resp.Body); !strings.Contains(got.Message, "row 1: features overflow") {
		t.Errorf("message %q, want it to name row 1 and the overflow", got.Message)
	}
}

func TestWrongMethods(t *testing.T) {
	srv := newTestServer(t, Config{})
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, "/invocations"},
		{http.MethodPost, "/ping"},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: status %d, want 405", tt.method, tt.path, resp.StatusCode)
		}
	}
}

func TestPing(t *testing.T) {
	for _, tt := range []struct {
		name         string
		neverHealthy bool
		want         int
	}{
		{"healthy", false, http.StatusOK},
		{"never healthy", true, http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, Config{NeverHealthy: tt.neverHealthy})
			for range 3 {
				resp, err := http.Get(srv.URL + "/ping")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Errorf("GET /ping: status %d, want %d", resp.StatusCode, tt.want)
				}
				if len(body) != 0 {
					t.Errorf("GET /ping: body %q, want empty", body)
				}
			}
			// Invocations are served either way.
			if resp := post(t, srv.URL, "application/json", rowPos); resp.StatusCode != http.StatusOK {
				t.Errorf("POST /invocations: status %d, want 200", resp.StatusCode)
			}
		})
	}
}

// invokeN counts the statuses of n invocations made straight on the handler.
func invokeN(t *testing.T, cfg Config, n int) map[int]int {
	t.Helper()
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]int{}
	for range n {
		req := httptest.NewRequest(http.MethodPost, "/invocations", strings.NewReader(rowPos))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got[rec.Code]++
	}
	return got
}

func TestErrorRate(t *testing.T) {
	const n = 400
	tests := []struct {
		name     string
		rate     float64
		status   int
		min, max int // injected errors expected
	}{
		{"never", 0, 0, 0, 0},
		{"always", 1, 0, n, n},
		{"always with status", 1, 503, n, n},
		{"half", 0.5, 0, n/2 - 40, n/2 + 40},
		{"a tenth", 0.1, 0, n/10 - 20, n/10 + 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := invokeN(t, Config{ErrorRate: tt.rate, ErrorStatus: tt.status, Seed: 42}, n)
			want := tt.status
			if want == 0 {
				want = http.StatusInternalServerError
			}
			if got[want] < tt.min || got[want] > tt.max {
				t.Errorf("%d of %d invocations answered %d, want %d..%d", got[want], n, want, tt.min, tt.max)
			}
			if got[want]+got[http.StatusOK] != n {
				t.Errorf("statuses %v, want only 200 and %d", got, want)
			}
		})
	}
}

func TestInjectedErrorBody(t *testing.T) {
	srv := newTestServer(t, Config{ErrorRate: 1, ErrorStatus: 502, Version: "v3", InstanceID: "i-2"})
	resp := post(t, srv.URL, "application/json", rowPos)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	got := decode[errorBody](t, resp.Body)
	want := errorBody{Error: "injected_error", Message: "injected error (KILN_DEMO_ERROR_RATE=1)", ModelVersion: "v3", Instance: "i-2"}
	if got != want {
		t.Errorf("body %+v, want %+v", got, want)
	}
}

func TestSeedReplaysTheSameRun(t *testing.T) {
	outcomes := func(seed uint64) string {
		h, err := NewHandler(Config{ErrorRate: 0.5, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for range 64 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/invocations", strings.NewReader(rowPos)))
			if rec.Code == http.StatusOK {
				b.WriteByte('.')
			} else {
				b.WriteByte('x')
			}
		}
		return b.String()
	}
	a, b, c := outcomes(7), outcomes(7), outcomes(8)
	if a != b {
		t.Errorf("seed 7 gave %s then %s, want the same run", a, b)
	}
	if a == c {
		t.Errorf("seeds 7 and 8 both gave %s, want different runs", a)
	}
}

// recordingSleep records every delay asked for and returns at once.
type recordingSleep struct {
	mu sync.Mutex
	ds []time.Duration
}

func (r *recordingSleep) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ds = append(r.ds, d)
	return ctx.Err()
}

func TestLatency(t *testing.T) {
	tests := []struct {
		name            string
		latency, jitter time.Duration
		errorRate       float64
		wantSleeps      int
	}{
		{"none", 0, 0, 0, 0},
		{"fixed fractional", 2500 * time.Microsecond, 0, 0, 20},
		{"with jitter", 5 * time.Millisecond, 3 * time.Millisecond, 0, 20},
		{"jitter only", 0, time.Millisecond, 0, 20},
		{"also before injected errors", 5 * time.Millisecond, 0, 1, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := &recordingSleep{}
			invokeN(t, Config{Latency: tt.latency, LatencyJitter: tt.jitter, ErrorRate: tt.errorRate, Seed: 1, Sleep: rs.sleep}, 20)
			if len(rs.ds) != tt.wantSleeps {
				t.Fatalf("slept %d times, want %d", len(rs.ds), tt.wantSleeps)
			}
			distinct := map[time.Duration]bool{}
			for _, d := range rs.ds {
				if d < tt.latency || d > tt.latency+tt.jitter {
					t.Errorf("slept %v, want %v..%v", d, tt.latency, tt.latency+tt.jitter)
				}
				distinct[d] = true
			}
			if tt.jitter > 0 && len(distinct) < 2 {
				t.Errorf("jitter %v gave a single delay %v, want it to vary", tt.jitter, rs.ds)
			}
		})
	}
}

func TestLatencyGivesUpWhenCallerLeaves(t *testing.T) {
	h, err := NewHandler(Config{Latency: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/invocations", strings.NewReader(rowPos))
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { h.ServeHTTP(rec, req); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still sleeping after its request was cancelled")
	}
}

// gateSleep blocks every delay until the test lets it go, announcing each.
type gateSleep struct {
	asleep  chan time.Duration
	release chan struct{}
}

func newGateSleep() *gateSleep {
	return &gateSleep{asleep: make(chan time.Duration, 16), release: make(chan struct{})}
}

func (g *gateSleep) sleep(ctx context.Context, d time.Duration) error {
	g.asleep <- d
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestStreamingSendsEachEventAsProduced(t *testing.T) {
	gate := newGateSleep()
	srv := newTestServer(t, Config{StreamDelay: 250 * time.Millisecond, Version: "v5", InstanceID: "i-3", Sleep: gate.sleep})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/invocations",
		strings.NewReader(`{"instances":[`+rowPos+`,`+rowNeg+`,`+rowPos+`]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Errorf("Content-Type %q, want text/event-stream", got)
	}
	if got := resp.Header.Get(VersionHeader); got != "v5" {
		t.Errorf("%s %q, want v5", VersionHeader, got)
	}

	r := bufio.NewReader(resp.Body)
	readEvent := func() event {
		t.Helper()
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		data, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "data: ")
		if !ok {
			t.Fatalf("line %q, want a data: line", line)
		}
		if blank, err := r.ReadString('\n'); err != nil || blank != "\n" {
			t.Fatalf("after data: got %q, %v, want a blank line", blank, err)
		}
		var e event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		return e
	}
	want := []event{
		{Index: 0, Score: scorePos, Label: "pos", ModelVersion: "v5", Instance: "i-3"},
		{Index: 1, Score: scoreNeg, Label: "neg", ModelVersion: "v5", Instance: "i-3"},
		{Index: 2, Score: scorePos, Label: "pos", ModelVersion: "v5", Instance: "i-3"},
	}
	check := func(got, want event) {
		t.Helper()
		if got.Index != want.Index || !near(got.Score, want.Score) || got.Label != want.Label ||
			got.ModelVersion != want.ModelVersion || got.Instance != want.Instance {
			t.Errorf("event %+v, want %+v", got, want)
		}
	}

	// The handler is now held in the pause after the first event, so the
	// second and third do not exist yet: the first must already be here.
	check(readEvent(), want[0])
	if d := <-gate.asleep; d != 250*time.Millisecond {
		t.Errorf("paused %v between events, want 250ms", d)
	}
	gate.release <- struct{}{}
	check(readEvent(), want[1])
	<-gate.asleep
	gate.release <- struct{}{}
	check(readEvent(), want[2])
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Errorf("after the last event: %q, %v, want end of stream", rest, err)
	}
}

func TestStreamingErrorsAreJSON(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp := post(t, srv.URL, "application/json", `[[1,2]]`, "Accept", "application/json, text/event-stream;q=0.9")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json", got)
	}
}

func TestWantsEventStream(t *testing.T) {
	tests := []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{"application/json"}, false},
		{[]string{"*/*"}, false},
		{[]string{"text/event-stream"}, true},
		{[]string{"Text/Event-Stream; charset=utf-8"}, true},
		{[]string{"application/json, text/event-stream"}, true},
		{[]string{"application/json", "text/event-stream"}, true},
	}
	for _, tt := range tests {
		if got := wantsEventStream(tt.accept); got != tt.want {
			t.Errorf("wantsEventStream(%q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
}

func TestCrashAfter(t *testing.T) {
	var (
		mu      sync.Mutex
		crashes int
	)
	srv := newTestServer(t, Config{CrashAfter: 2, ErrorRate: 1, OnCrash: func(*http.Request) {
		mu.Lock()
		crashes++
		mu.Unlock()
	}})
	for i := 1; i <= 2; i++ {
		// Failed invocations count too.
		resp := post(t, srv.URL, "application/json", rowPos)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("invocation %d: status %d, want 500", i, resp.StatusCode)
		}
		mu.Lock()
		got := crashes
		mu.Unlock()
		if want := i / 2; got != want {
			t.Errorf("after invocation %d: OnCrash called %d times, want %d", i, got, want)
		}
		if closing := resp.Close; closing != (i == 2) {
			t.Errorf("invocation %d: Connection: close is %v, want %v", i, closing, i == 2)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/invocations", strings.NewReader(rowPos))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("invocation 3: status %d, want the connection dropped", resp.StatusCode)
	}
	// /ping is not an invocation and still answers.
	resp, err := http.Get(srv.URL + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /ping: status %d, want 200", resp.StatusCode)
	}
}

func TestNewHandlerRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"rate above 1", Config{ErrorRate: 1.5}, "error rate 1.5 is out of range 0..1"},
		{"rate NaN", Config{ErrorRate: math.NaN()}, "error rate NaN"},
		{"status not an error", Config{ErrorStatus: 200}, "error status 200 is out of range 400..599"},
		{"negative latency", Config{Latency: -time.Millisecond}, "latency -1ms is out of range"},
		{"jitter too long", Config{LatencyJitter: 25 * time.Hour}, "latency jitter 25h0m0s is out of range"},
		{"negative crash", Config{CrashAfter: -1}, "crash after -1 invocations"},
		{"port", Config{Port: 70000}, "port 70000 is out of range"},
		{"version newline", Config{Version: "v1\nX-Evil: 1"}, "version:"},
		{"bad model", Config{Model: &Model{}}, "model: model has no weights"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHandler(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewHandler: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

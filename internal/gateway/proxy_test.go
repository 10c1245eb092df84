package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln/internal/clock"
)

func TestHeadersPassThrough(t *testing.T) {
	type seen struct {
		Header map[string][]string
		Body   string
	}
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := map[string][]string{}
		for k, v := range r.Header {
			h[k] = v
		}
		w.Header().Set("Content-Type", "application/x-test")
		w.Header().Set("X-Amzn-SageMaker-Custom-Attributes", "model=1")
		w.Header().Set("X-Other", "no")
		json.NewEncoder(w).Encode(seen{Header: h, Body: string(b)})
	})
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})

	r := f.invoke(t, "ep", []byte("1,2,3"), map[string]string{
		"Content-Type":                       "text/csv",
		"Accept":                             "application/json",
		"X-Amzn-SageMaker-Custom-Attributes": "trace=1, a=b",
		"X-Amzn-SageMaker-Inference-Id":      "req-42",
		"X-Amzn-SageMaker-Target-Variant":    "AllTraffic",
		"Authorization":                      "secret",
		"X-Other":                            "client",
	})
	if r.status != http.StatusOK {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var s seen
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatal(err)
	}
	if s.Body != "1,2,3" {
		t.Errorf("model got body %q, want 1,2,3", s.Body)
	}
	want := map[string]string{
		"Content-Type":                       "text/csv",
		"Accept":                             "application/json",
		"X-Amzn-Sagemaker-Custom-Attributes": "trace=1, a=b",
		"X-Amzn-Sagemaker-Inference-Id":      "req-42",
	}
	for k, v := range want {
		if got := s.Header[k]; len(got) != 1 || got[0] != v {
			t.Errorf("model got %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Authorization", "X-Other", "X-Amzn-Sagemaker-Target-Variant", "Accept-Encoding"} {
		if got, ok := s.Header[k]; ok {
			t.Errorf("model got %s = %q, want it not passed", k, got)
		}
	}

	if got := r.header.Get("Content-Type"); got != "application/x-test" {
		t.Errorf("Content-Type = %q, want the model's", got)
	}
	if got := r.header.Get("X-Amzn-Invoked-Production-Variant"); got != "AllTraffic" {
		t.Errorf("X-Amzn-Invoked-Production-Variant = %q, want AllTraffic", got)
	}
	if got := r.header.Get("X-Amzn-SageMaker-Custom-Attributes"); got != "model=1" {
		t.Errorf("custom attributes = %q, want model=1", got)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if got := r.header.Get("x-amzn-RequestId"); !uuid.MatchString(got) {
		t.Errorf("x-amzn-RequestId = %q, want a UUID", got)
	}
	if got := r.header.Get("X-Other"); got != "" {
		t.Errorf("X-Other = %q passed back, want it dropped", got)
	}
	if got := r.header.Get("Content-Length"); got != strconv.Itoa(len(r.body)) {
		t.Errorf("Content-Length = %s for a %d-byte body", got, len(r.body))
	}

	// A model that sets no Content-Type gets none sniffed for it.
	bare := newModel(t, "bare", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		io.WriteString(w, "<html>")
	})
	f.Update([]EndpointRoute{oneVariant("ep", nil, bare.route("b1"))})
	r = f.invoke(t, "ep", nil, nil)
	if got := r.header.Get("Content-Type"); r.status != http.StatusOK || got != "" {
		t.Errorf("model without Content-Type: status %d, Content-Type %q; want 200 and none", r.status, got)
	}
}

func TestErrors(t *testing.T) {
	m := newModel(t, "m", nil)
	// The invocation of the endpoint with no instance waits briefly.
	f := newFront(t, Config{Account: "123456789012", InstanceWait: 10 * time.Millisecond})
	f.Update([]EndpointRoute{
		oneVariant("ep", nil, m.route("m1")),
		oneVariant("empty", nil),
	})
	url := func(ep string) string { return f.srv.URL + "/endpoints/" + ep + "/invocations" }

	tests := []struct {
		name        string
		method, url string
		header      map[string]string
		status      int
		code        string
		message     string // substring
	}{
		{"GET", "GET", url("ep"), nil, 405, "UnknownOperationException", "use POST"},
		{"wrong path", "POST", f.srv.URL + "/endpoints/ep/other", nil, 404, "UnknownOperationException", ""},
		{"no name", "POST", f.srv.URL + "/endpoints//invocations", nil, 404, "UnknownOperationException", ""},
		{"unknown endpoint", "POST", url("nope"), nil, 400, "ValidationError", "Endpoint nope of account 123456789012 not found."},
		{"custom attributes too long", "POST", url("ep"), map[string]string{"X-Amzn-SageMaker-Custom-Attributes": strings.Repeat("a", 1025)}, 400, "ValidationError", "customAttributes"},
		{"custom attributes not ASCII", "POST", url("ep"), map[string]string{"X-Amzn-SageMaker-Custom-Attributes": "café"}, 400, "ValidationError", "customAttributes"},
		{"custom attributes with a tab", "POST", url("ep"), map[string]string{"X-Amzn-SageMaker-Custom-Attributes": "a\tb"}, 400, "ValidationError", "customAttributes"},
		{"inference id too long", "POST", url("ep"), map[string]string{"X-Amzn-SageMaker-Inference-Id": strings.Repeat("i", 65)}, 400, "ValidationError", "inferenceId"},
		{"inference id empty", "POST", url("ep"), map[string]string{"X-Amzn-SageMaker-Inference-Id": ""}, 400, "ValidationError", "inferenceId"},
		{"content type too long", "POST", url("ep"), map[string]string{"Content-Type": strings.Repeat("t", 1025)}, 400, "ValidationError", "contentType"},
		{"accept too long", "POST", url("ep"), map[string]string{"Accept": strings.Repeat("t", 1025)}, 400, "ValidationError", "accept"},
		{"unknown target variant", "POST", url("ep"), map[string]string{"X-Amzn-SageMaker-Target-Variant": "Other"}, 400, "ValidationError", "Other"},
		{"no routable instance", "POST", url("empty"), nil, 503, "ServiceUnavailable", "empty"},
		{"longest custom attributes", "POST", url("ep"), map[string]string{"X-Amzn-SageMaker-Custom-Attributes": strings.Repeat("a", 1024)}, 200, "", ""},
		{"longest inference id", "POST", url("ep"), map[string]string{"X-Amzn-SageMaker-Inference-Id": strings.Repeat("i", 64)}, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[http.CanonicalHeaderKey(k)] = []string{v}
			}
			r := f.do(t, req)
			if r.status != tt.status {
				t.Fatalf("status %d %s, want %d", r.status, r.body, tt.status)
			}
			if tt.code == "" {
				return
			}
			e := decodeError(t, r)
			if e.Type != tt.code || !strings.Contains(e.Message, tt.message) {
				t.Errorf("got %s %q, want %s containing %q", e.Type, e.Message, tt.code, tt.message)
			}
			if got := r.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
		})
	}
	if m.calls.Load() != 2 {
		t.Errorf("model got %d calls, want 2 (only the valid requests)", m.calls.Load())
	}
}

func TestBodyLimit(t *testing.T) {
	var got int
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = len(b)
	})
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
	url := f.srv.URL + "/endpoints/ep/invocations"
	body := make([]byte, DefaultMaxBody+1)
	rand.Read(body)

	for _, tt := range []struct {
		name    string
		n       int
		chunked bool
		status  int
	}{
		{"6 MiB", DefaultMaxBody, false, 200},
		{"6 MiB chunked", DefaultMaxBody, true, 200},
		{"6 MiB + 1", DefaultMaxBody + 1, false, 413},
		{"6 MiB + 1 chunked", DefaultMaxBody + 1, true, 413},
		{"empty", 0, false, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got = -1
			var rd io.Reader = bytes.NewReader(body[:tt.n])
			if tt.chunked {
				rd = io.MultiReader(rd) // hides the length
			}
			req, _ := http.NewRequest("POST", url, rd)
			r := f.do(t, req)
			if r.status != tt.status {
				t.Fatalf("status %d %.200s, want %d", r.status, r.body, tt.status)
			}
			if tt.status == 200 {
				if got != tt.n {
					t.Errorf("model got %d bytes, want %d", got, tt.n)
				}
				return
			}
			e := decodeError(t, r)
			if e.Type != "ValidationError" || !strings.Contains(e.Message, "6291456") {
				t.Errorf("got %+v, want a ValidationError naming the 6291456-byte limit", e)
			}
			if got != -1 {
				t.Errorf("model was called for a body over the limit")
			}
		})
	}
}

func TestModelError(t *testing.T) {
	long := strings.Repeat("x", 10000)
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Accept") {
		case "404":
			http.Error(w, "no such thing", http.StatusNotFound)
		case "long":
			http.Error(w, long, http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error": "boom"}`)
		}
	})
	rec := &recorder{}
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", rec, m.route("m1"))})

	for _, tt := range []struct {
		accept   string
		status   int
		original string
		message  string
	}{
		{"", 500, `{"error": "boom"}`, "Received server error (500)"},
		{"404", 404, "no such thing\n", "Received client error (404)"},
		{"long", 500, long[:maxOriginalMessage], "Received server error (500)"},
	} {
		r := f.invoke(t, "ep", nil, map[string]string{"Accept": tt.accept})
		if r.status != http.StatusFailedDependency {
			t.Fatalf("model %d: status %d, want 424", tt.status, r.status)
		}
		e := decodeError(t, r)
		if e.Type != "ModelError" || e.OriginalStatusCode == nil || *e.OriginalStatusCode != tt.status ||
			e.OriginalMessage != tt.original || !strings.Contains(e.Message, tt.message) {
			t.Errorf("model %d: got %+v, want ModelError with OriginalStatusCode %d and the body", tt.status, e, tt.status)
		}
		if e.LogStreamArn != nil {
			t.Errorf("LogStreamArn = %q, want it omitted", *e.LogStreamArn)
		}
		if !bytes.Contains(r.body, []byte(`"OriginalStatusCode":`+strconv.Itoa(tt.status))) {
			t.Errorf("OriginalStatusCode is not a number in %s", r.body)
		}
	}
	for _, s := range rec.all() {
		if s.Status != 424 || !s.ModelError {
			t.Errorf("sample %+v, want Status 424 and ModelError", s)
		}
	}
}

func TestModelTimeout(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	fc := clock.NewFake()
	rec := &recorder{}
	f := newFront(t, Config{Clock: fc})
	f.Update([]EndpointRoute{oneVariant("ep", rec, m.route("m1"))})

	done := make(chan result, 1)
	go func() { done <- f.invoke(t, "ep", nil, nil) }()
	<-arrived
	fc.Advance(DefaultModelTimeout - time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("answered %d %s before the timeout", r.status, r.body)
	case <-time.After(50 * time.Millisecond):
	}
	fc.Advance(time.Millisecond)
	r := <-done
	if r.status != http.StatusFailedDependency {
		t.Fatalf("status %d %s, want 424", r.status, r.body)
	}
	if e := decodeError(t, r); e.Type != "ModelError" || !strings.Contains(e.Message, "timed out") {
		t.Errorf("got %+v, want a ModelError saying it timed out", e)
	}
	if s := rec.all(); len(s) != 1 || s[0].Status != 424 || !s[0].ModelError {
		t.Errorf("samples %+v, want one 424 model error", s)
	}
}

func TestDeadInstanceIsRetried(t *testing.T) {
	alive := newModel(t, "alive", nil)
	dead := newModel(t, "dead", nil)
	// reset accepts the connection and closes it without answering.
	reset := newModel(t, "reset", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	rec := &recorder{}
	f := newFront(t, Config{})

	t.Run("killed after serving", func(t *testing.T) {
		f.Update([]EndpointRoute{oneVariant("ep", rec, alive.route("a"), dead.route("d"))})
		// Warm keep-alive connections to both, then kill one.
		got := f.load(t, "ep", 100, 4, nil, byBody)
		if got["dead"] == 0 || got["alive"] == 0 {
			t.Fatalf("warm-up got %v, want both instances used", got)
		}
		dead.CloseClientConnections()
		dead.Close()
		got = f.load(t, "ep", 300, 4, nil, byBody)
		if got["alive"] != 300 {
			t.Errorf("after the kill got %v, want all 300 answered by alive", got)
		}
	})
	t.Run("closed after reading the request", func(t *testing.T) {
		// The model may have acted on the request: it is not sent again.
		f.Update([]EndpointRoute{oneVariant("ep", rec, alive.route("a"), reset.route("r"))})
		got := f.load(t, "ep", 100, 4, nil, func(r result) string {
			if r.status == http.StatusFailedDependency {
				return decodeError(t, r).Type
			}
			return byBody(r)
		})
		if n := reset.calls.Load(); n == 0 || got["ModelError"] != int(n) || got["alive"] != 100-int(n) {
			t.Errorf("got %v with %d requests to the closing instance; want a ModelError for each of those, and the rest answered by alive", got, n)
		}
	})
	t.Run("only instance dead", func(t *testing.T) {
		rec.mu.Lock()
		rec.samples = nil
		rec.mu.Unlock()
		f.Update([]EndpointRoute{oneVariant("ep", rec, dead.route("d"))})
		r := f.invoke(t, "ep", nil, nil)
		if r.status != http.StatusServiceUnavailable || decodeError(t, r).Type != "ServiceUnavailable" {
			t.Fatalf("got %d %s, want 503 ServiceUnavailable", r.status, r.body)
		}
		if s := rec.all(); len(s) != 1 || s[0].Status != 503 || !s[0].ModelError {
			t.Errorf("samples %+v, want one 503 model error", s)
		}
	})
}

func TestResponseStreaming(t *testing.T) {
	next := make(chan struct{})
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: two\n\n")
	})
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})

	req, _ := http.NewRequest("POST", f.srv.URL+"/endpoints/ep/invocations", nil)
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q; want 200 text/event-stream", res.StatusCode, ct)
	}
	br := bufio.NewReader(res.Body)
	event := func() string {
		ch := make(chan string, 1)
		go func() {
			var ev strings.Builder
			for {
				line, err := br.ReadString('\n')
				ev.WriteString(line)
				if err != nil || line == "\n" {
					ch <- ev.String()
					return
				}
			}
		}()
		select {
		case ev := <-ch:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s: the gateway holds the stream back")
			return ""
		}
	}
	if got := event(); got != "data: one\n\n" {
		t.Fatalf("first event %q", got)
	}
	close(next) // the model sends the second event only now
	if got := event(); got != "data: two\n\n" {
		t.Fatalf("second event %q", got)
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("trailing bytes %q", rest)
	}
}

func TestLargeResponse(t *testing.T) {
	big := make([]byte, 5<<20)
	rand.Read(big)
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.Header.Get("Accept") == "chunked" {
			w.Write(big[:1<<20])
			w.(http.Flusher).Flush()
			w.Write(big[1<<20:])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Write(big)
	})
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
	for _, accept := range []string{"", "chunked"} {
		r := f.invoke(t, "ep", nil, map[string]string{"Accept": accept})
		if r.status != 200 || !bytes.Equal(r.body, big) {
			t.Errorf("Accept %q: status %d, %d bytes; want 200 and the model's %d bytes", accept, r.status, len(r.body), len(big))
		}
	}
}

func TestModelCutShort(t *testing.T) {
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") == "sized" {
			w.Header().Set("Content-Length", "100000")
		}
		w.WriteHeader(200)
		io.WriteString(w, strings.Repeat("partial ", 4096))
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	for _, accept := range []string{"sized", "chunked"} {
		t.Run(accept, func(t *testing.T) {
			rec := &recorder{}
			f := newFront(t, Config{})
			f.Update([]EndpointRoute{oneVariant("ep", rec, m.route("m1"))})
			req, _ := http.NewRequest("POST", f.srv.URL+"/endpoints/ep/invocations", nil)
			req.Header.Set("Accept", accept)
			// The status line may or may not have reached the client before
			// the model failed; either way the client must see an error, not
			// a body that looks complete.
			res, err := f.client.Do(req)
			if err == nil {
				_, err = io.ReadAll(res.Body)
				res.Body.Close()
			}
			if err == nil {
				t.Error("the client read a cut-short body without an error")
			}
			// The handler records before it cuts the connection.
			deadline := time.Now().Add(5 * time.Second)
			for len(rec.all()) == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if s := rec.all(); len(s) != 1 || !s[0].ModelError || s[0].Status != 424 || s[0].ModelStatus != 0 {
				t.Errorf("samples %+v, want one 424 model error", s)
			}
		})
	}
}

func TestClientGone(t *testing.T) {
	arrived := make(chan struct{}, 1)
	canceled := make(chan struct{})
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
		close(canceled)
	})
	rec := &recorder{}
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", rec, m.route("m1"))})

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", f.srv.URL+"/endpoints/ep/invocations", nil)
	go func() { <-arrived; cancel() }()
	if _, err := f.client.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the client's cancellation", err)
	}
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the model's request was not cancelled when the client went away")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.all()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s := rec.all(); len(s) != 1 || s[0].Status != statusClientClosed || s[0].ModelError {
		t.Errorf("samples %+v, want one 499 that is not a model error", s)
	}
	if n := f.Inflight("m1"); n != 0 {
		t.Errorf("Inflight = %d after the request ended, want 0", n)
	}
}

// TestModelClosedKeptAliveConn: a model that closes its kept-alive
// connections between requests, as a server's idle timeout does, costs no
// invocation: the gateway finds its pooled connection closed when it sends
// the next request, and sends it once more on a fresh one.
func TestModelClosedKeptAliveConn(t *testing.T) {
	m := newModel(t, "m", nil)
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
	for i := range 4 {
		if r := f.invoke(t, "ep", []byte(`{}`), nil); r.status != http.StatusOK || string(r.body) != "m" {
			t.Fatalf("invocation %d: %d %s", i+1, r.status, r.body)
		}
		m.CloseClientConnections()
		if i%2 == 1 {
			time.Sleep(20 * time.Millisecond) // the close has reached the gateway
		}
	}
	if n := m.calls.Load(); n != 4 {
		t.Errorf("the model saw %d requests, want 4: each once", n)
	}
}

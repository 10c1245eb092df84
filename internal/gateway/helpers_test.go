package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// After answering a request it will not read the body of, net/http
	// closes the connection's write side and waits half a second before
	// closing it (closeWriteAndWait); that goroutine ends on its own.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

// seeded returns a deterministic, lock-free random source (SplitMix64).
func seeded(seed uint64) func() uint64 {
	var s atomic.Uint64
	s.Store(seed)
	return func() uint64 {
		z := s.Add(0x9e3779b97f4a7c15)
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
}

// model is a real HTTP server standing in for a model instance.
type model struct {
	*httptest.Server
	addr  string
	calls atomic.Int64
}

// newModel starts a model server; handler nil answers 200 with the name.
func newModel(t testing.TB, name string, handler http.HandlerFunc) *model {
	t.Helper()
	m := &model{}
	if handler == nil {
		handler = func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, name)
		}
	}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/invocations" || r.Method != http.MethodPost {
			http.Error(w, "wrong request "+r.Method+" "+r.URL.Path, http.StatusTeapot)
			return
		}
		m.calls.Add(1)
		handler(w, r)
	}))
	m.addr = strings.TrimPrefix(m.URL, "http://")
	t.Cleanup(m.Close)
	return m
}

func (m *model) route(id string) InstanceRoute { return InstanceRoute{ID: id, Addr: m.addr} }

// recorder collects Samples.
type recorder struct {
	mu      sync.Mutex
	samples []Sample
}

func (r *recorder) Record(s Sample) {
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

func (r *recorder) all() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sample(nil), r.samples...)
}

// front is a Gateway behind a real HTTP server, with a client for it.
type front struct {
	*Gateway
	srv    *httptest.Server
	client *http.Client
}

func newFront(t testing.TB, cfg Config) *front {
	t.Helper()
	if cfg.Rand == nil {
		cfg.Rand = seeded(1)
	}
	if netHTTPOnly {
		cfg.NetHTTPOnly = true
	}
	g := New(cfg)
	srv := httptest.NewServer(g)
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	f := &front{Gateway: g, srv: srv, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
		g.Close()
	})
	return f
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (f *front) invoke(t testing.TB, endpoint string, body []byte, header map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/endpoints/"+endpoint+"/invocations", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return f.do(t, req)
}

func (f *front) do(t testing.TB, req *http.Request) result {
	t.Helper()
	res, err := f.client.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", req.Method, req.URL, err)
		return result{}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Errorf("read body: %v", err)
	}
	return result{status: res.StatusCode, header: res.Header, body: b}
}

// apiError decodes an error body.
type apiError struct {
	Type               string `json:"__type"`
	Message            string `json:"message"`
	OriginalStatusCode *int   `json:"OriginalStatusCode"`
	OriginalMessage    string `json:"OriginalMessage"`
	LogStreamArn       *string
}

func decodeError(t testing.TB, r result) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	if got := r.header.Get("X-Amzn-ErrorType"); got != e.Type {
		t.Errorf("X-Amzn-ErrorType = %q, __type = %q; want them equal", got, e.Type)
	}
	return e
}

// oneVariant is an endpoint with one variant and one fleet.
func oneVariant(name string, rec Recorder, ins ...InstanceRoute) EndpointRoute {
	return EndpointRoute{Name: name, Variants: []VariantRoute{{
		Name: "AllTraffic", Weight: 1,
		Fleets: []FleetRoute{{ID: "f1", Config: "c1", Share: 1, Instances: ins, Recorder: rec}},
	}}}
}

// load sends n requests from c concurrent workers and returns a count of
// responses per key(result).
func (f *front) load(t testing.TB, endpoint string, n, c int, header map[string]string, key func(result) string) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				r := f.invoke(t, endpoint, []byte("x"), header)
				k := key(r)
				mu.Lock()
				counts[k]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

func byVariant(r result) string {
	if r.status != http.StatusOK {
		return "status " + http.StatusText(r.status) + ": " + string(r.body)
	}
	return r.header.Get("X-Amzn-Invoked-Production-Variant")
}

func byBody(r result) string {
	if r.status != http.StatusOK {
		return "status " + http.StatusText(r.status) + ": " + string(r.body)
	}
	return string(r.body)
}

func within(got, want, tol int) bool { return got >= want-tol && got <= want+tol }

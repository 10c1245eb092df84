package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestEndpointFromPath(t *testing.T) {
	for _, tt := range []struct {
		path string
		name string
		ok   bool
	}{
		{"/endpoints/ep/invocations", "ep", true},
		{"/endpoints/my-endpoint-1/invocations", "my-endpoint-1", true},
		{"/endpoints//invocations", "", false},
		{"/endpoints/invocations", "", false},
		{"/endpoints/a/b/invocations", "", false},
		{"/endpoints/ep/invocations/", "", false},
		{"/endpoints/ep", "", false},
		{"/invocations", "", false},
		{"", "", false},
		{"/endpoints/", "", false},
	} {
		name, ok := endpointFromPath(tt.path)
		if name != tt.name || ok != tt.ok {
			t.Errorf("endpointFromPath(%q) = %q, %v; want %q, %v", tt.path, name, ok, tt.name, tt.ok)
		}
	}
}

func TestOperationFromPath(t *testing.T) {
	for _, tt := range []struct {
		path       string
		name       string
		stream, ok bool
	}{
		{"/endpoints/ep/invocations", "ep", false, true},
		{"/endpoints/ep/invocations-response-stream", "ep", true, true},
		{"/endpoints//invocations-response-stream", "", false, false},
		{"/endpoints/a/b/invocations-response-stream", "", false, false},
		{"/endpoints/ep/invocations-response-streams", "", false, false},
		{"/endpoints/ep/async-invocations", "", false, false},
	} {
		name, stream, ok := operationFromPath(tt.path)
		if name != tt.name || stream != tt.stream || ok != tt.ok {
			t.Errorf("operationFromPath(%q) = %q, %v, %v; want %q, %v, %v", tt.path, name, stream, ok, tt.name, tt.stream, tt.ok)
		}
	}
}

func FuzzInvocationPath(f *testing.F) {
	for _, s := range []string{"/endpoints/ep/invocations", "/endpoints//invocations", "/endpoints/invocations",
		"/endpoints/a/b/invocations", "/endpoints/", "/", "/endpoints/ep/invocationsinvocations"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		name, ok := endpointFromPath(path)
		if !ok {
			if name != "" {
				t.Fatalf("endpointFromPath(%q) = %q, false; want no name", path, name)
			}
			return
		}
		if name == "" || strings.Contains(name, "/") {
			t.Fatalf("endpointFromPath(%q) = %q", path, name)
		}
		if pathPrefix+name+pathSuffix != path {
			t.Fatalf("endpointFromPath(%q) = %q, which does not rebuild the path", path, name)
		}
	})
}

func FuzzHeaders(f *testing.F) {
	f.Add("trace=1", "id-1", "text/csv", "application/json", "AllTraffic")
	f.Add(strings.Repeat("a", 1025), "", "", "", "")
	f.Add("é", " x", "\x00", "", "Nope")
	f.Fuzz(func(t *testing.T, attrs, id, ct, accept, target string) {
		h := http.Header{}
		for k, v := range map[string]string{hCustomAttributes: attrs, hInferenceID: id, hContentType: ct, hAccept: accept, hTargetVariant: target} {
			if v != "" || k == hInferenceID {
				h[k] = []string{v}
			}
		}
		msg := checkHeaders(h)
		if msg == "" {
			if len(attrs) > maxCustomAttributes || !visibleASCII(attrs) {
				t.Fatalf("accepted custom attributes %q", attrs)
			}
			if len(id) < 1 || len(id) > maxInferenceID || id[0] == ' ' || !visibleASCII(id) {
				t.Fatalf("accepted inference id %q", id)
			}
			if len(ct) > maxContentType || len(accept) > maxAccept {
				t.Fatalf("accepted an over-long content type or accept")
			}
		}

		// The whole handler, in-process: whatever the input, a well-formed
		// answer and never a 500 or a panic.
		// No instance exists: the answer is the 503 at once, not after
		// the wait for one to start.
		g := New(Config{Rand: seeded(1), InstanceWait: -1})
		defer g.Close()
		g.Update([]EndpointRoute{oneVariant("ep", nil)})
		req := httptest.NewRequest(http.MethodPost, "/endpoints/ep/invocations", bytes.NewReader([]byte("x")))
		for k, v := range h {
			req.Header[k] = v
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d", w.Code)
		}
		var e errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Type == "" || w.Header().Get("X-Amzn-ErrorType") != e.Type {
			t.Fatalf("error body %q (%v)", w.Body.Bytes(), err)
		}
	})
}

func FuzzServePath(f *testing.F) {
	f.Add("POST", "/endpoints/ep/invocations")
	f.Add("GET", "/endpoints/ep/invocations")
	f.Add("POST", "/endpoints/%22quoted%22/invocations")
	f.Fuzz(func(t *testing.T, method, path string) {
		// No instance exists: the answer is the 503 at once, not after
		// the wait for one to start.
		g := New(Config{Rand: seeded(1), InstanceWait: -1})
		defer g.Close()
		g.Update([]EndpointRoute{oneVariant("ep", nil)})
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.Method = method
		req.URL.Path = path
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %q: status %d", method, path, w.Code)
		}
		var e errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Type == "" {
			t.Fatalf("%s %q: error body %q (%v)", method, path, w.Body.Bytes(), err)
		}
	})
}

// FuzzFastHead checks the fast path's request parser against net/http's: a
// head the fast path accepts must be one net/http reads the same way, so
// that no request means one thing to the gateway and another to a server
// behind or beside it.
func FuzzFastHead(f *testing.F) {
	for _, s := range []string{
		"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Type: t\r\n\r\n",
		"POST /endpoints/ep/invocations HTTP/1.1\r\nhost: a\r\naccept:  x \r\nX-Amzn-SageMaker-Inference-Id: i\r\n\r\n",
		"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
		"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: a\r\n Content-Length: 3\r\n\r\n",
		"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: a\r\nX-Amzn-SageMaker-Target-Variant: v\r\nConnection: keep-alive\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	g := New(Config{})
	defer g.Close()
	g.Update([]EndpointRoute{oneVariant("ep", nil, InstanceRoute{ID: "m", Addr: "m"})})
	f.Fuzz(func(t *testing.T, in []byte) {
		end, err := scanHead(in)
		if err != nil || end == 0 {
			return
		}
		head := in[:end]
		c := &fastConn{g: g}
		req, ok := c.parseHead(head)
		if !ok {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("fast path accepts %q, net/http refuses it: %v", head, err)
		}
		name, _ := endpointFromPath(r.URL.Path)
		if r.Method != http.MethodPost || name != string(req.name) || r.ContentLength != req.contentLength && !(r.ContentLength == 0 && req.contentLength == 0) ||
			r.Close || len(r.TransferEncoding) > 0 {
			t.Fatalf("%q: fast path reads POST %s length %d; net/http %s %s length %d close %v te %v",
				head, req.name, req.contentLength, r.Method, r.URL.Path, r.ContentLength, r.Close, r.TransferEncoding)
		}
		// The headers passed to the model are net/http's first values.
		var want []byte
		for _, k := range []string{hContentType, hAccept, hCustomAttributes, hInferenceID} {
			if v := r.Header[k]; len(v) > 0 {
				if len(v) > 1 {
					t.Fatalf("%q: fast path accepts a repeated %s", head, k)
				}
				want = appendHeader(want, k, v[0])
			}
		}
		got := sortedLines(c.pass)
		if got != sortedLines(want) {
			t.Fatalf("%q: fast path passes %q, net/http reads %q", head, c.pass, want)
		}
		// What Config.Authorize sees is what net/http would have shown it.
		ar := c.authRequest(head, req.name)
		if !reflect.DeepEqual(ar.Header, r.Header) || ar.Host != r.Host || ar.URL.Path != r.URL.Path ||
			ar.URL.EscapedPath() != r.URL.EscapedPath() || ar.RequestURI != r.RequestURI || ar.URL.RawQuery != r.URL.RawQuery {
			t.Fatalf("%q: Authorize would see %q %q %q, net/http reads %q %q %q",
				head, ar.RequestURI, ar.Host, ar.Header, r.RequestURI, r.Host, r.Header)
		}
	})
}

func sortedLines(b []byte) string {
	lines := strings.SplitAfter(string(b), "\r\n")
	slices.Sort(lines)
	return strings.Join(lines, "")
}

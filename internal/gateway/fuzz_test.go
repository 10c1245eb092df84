package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
		g := New(Config{Rand: seeded(1)})
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
		g := New(Config{Rand: seeded(1)})
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

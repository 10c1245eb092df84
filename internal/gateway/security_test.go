package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln/internal/clock"
)

// TestAnswersCannotRunScript: a model's text/html answer is served on the
// dashboard's origin; every answer tells the browser not to sniff its type
// and to render it sandboxed, with no script: sized, streamed, and errors.
func TestAnswersCannotRunScript(t *testing.T) {
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.Header.Get("Accept") {
		case "stream":
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
		case "error":
			w.WriteHeader(500)
		}
		w.Write([]byte("<script>alert(document.cookie)</script>"))
	})
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
	for _, accept := range []string{"sized", "stream", "error"} {
		r := f.invoke(t, "ep", nil, map[string]string{"Accept": accept})
		if r.status == 0 {
			continue
		}
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s (%d): X-Content-Type-Options %q, want nosniff", accept, r.status, got)
		}
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "sandbox") {
			t.Errorf("%s (%d): Content-Security-Policy %q, want default-src 'none' and sandbox", accept, r.status, csp)
		}
	}
	r := f.invoke(t, "nope", nil, nil)
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("a gateway error (%d) has no X-Content-Type-Options: nosniff", r.status)
	}
}

// TestFastPathRefusesBadHost: the fast path refuses the Host headers that
// net/http refuses (it hands them to net/http, which answers 400), on a
// connection it serves itself.
func TestFastPathRefusesBadHost(t *testing.T) {
	for _, tt := range []struct{ name, headers string }{
		{"space", "Host: a b\r\n"},
		{"control", "Host: a\x01b\r\n"},
		{"slash", "Host: a/b\r\n"},
		{"non-ASCII", "Host: \xc3\xa9\r\n"},
		{"two", "Host: a\r\nHost: b\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := echoModel(t)
			_, rc := takenOver(t, Config{}, m)
			before := m.calls.Load()
			rc.send("POST /endpoints/ep/invocations HTTP/1.1\r\n" + tt.headers + "Content-Length: 1\r\n\r\nx")
			res, body := rc.read()
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("got %d %q, want 400", res.StatusCode, body)
			}
			if n := m.calls.Load() - before; n != 0 {
				t.Errorf("the model got %d requests, want none", n)
			}
		})
	}
	// A valid one still goes through.
	m := echoModel(t)
	_, rc := takenOver(t, Config{}, m)
	rc.send("POST /endpoints/ep/invocations HTTP/1.1\r\nHost: [::1]:8080\r\nContent-Length: 1\r\n\r\nx")
	if res, body := rc.read(); res.StatusCode != 200 {
		t.Errorf("Host [::1]:8080: got %d %q, want 200", res.StatusCode, body)
	}
}

// TestClientThatDoesNotRead: a client that sends an invocation and never
// reads its (large) answer loses its connection once a write to it has
// waited WriteTimeout, on the gateway's clock, rather than holding it and
// a model connection for good; the request is recorded as the client's.
func TestClientThatDoesNotRead(t *testing.T) {
	big := strings.Repeat("x", 32<<20)
	m := newModel(t, "m", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(big))
	})
	clk := clock.NewFake()
	rec := &recorder{}
	f := newFront(t, Config{Clock: clk, ModelTimeout: time.Hour, WriteTimeout: 10 * time.Second})
	f.Update([]EndpointRoute{oneVariant("ep", rec, m.route("m1"))})
	rc := dialFront(t, f)
	rc.send(invocation("ep", "", "x"))
	// The gateway fills the socket buffers, then waits on the client; each
	// step of the clock gives a waiting write its time.
	deadline := time.Now().Add(20 * time.Second)
	for len(rec.all()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the gateway still writes to a client that has not read for minutes of its clock")
		}
		clk.Advance(5 * time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	if s := rec.all(); len(s) != 1 || s[0].Status != statusClientClosed {
		t.Errorf("samples %+v, want one 499", s)
	}
	// What the client had not read yet is there; then the connection ends.
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, rc.br)
	if err != nil || n >= int64(len(big)) {
		t.Errorf("the client read %d bytes, %v; want less than the answer, then the end of the connection", n, err)
	}
	if n := f.Inflight("m1"); n != 0 {
		t.Errorf("Inflight = %d, want 0", n)
	}
}

package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawModel is a model instance on a bare TCP listener: it reads each
// request whole, counts it as executed, then answers as act does. act
// returns false to end the connection (it closes it).
func rawModel(t *testing.T, executed *atomic.Int64, act func(c net.Conn, br *bufio.Reader) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if _, err := io.Copy(io.Discard, req.Body); err != nil {
						return
					}
					executed.Add(1)
					if !act(c, br) {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestAtMostOnce: a model that read an invocation and then failed to
// answer it (closed the connection, reset it, or sent something that is not
// HTTP) may have acted on it, so the invocation is not sent to a model
// again: each of 5 requests runs once, and its client gets a ModelError.
func TestAtMostOnce(t *testing.T) {
	for _, tt := range []struct {
		name string
		act  func(c net.Conn, br *bufio.Reader) bool
		how  string
	}{
		{"garbage", func(c net.Conn, _ *bufio.Reader) bool {
			io.WriteString(c, "garbage\r\n\r\n")
			return false
		}, badAnswer},
		{"closes", func(net.Conn, *bufio.Reader) bool { return false }, noAnswer},
		{"resets", func(c net.Conn, _ *bufio.Reader) bool {
			c.(*net.TCPConn).SetLinger(0)
			return false
		}, noAnswer},
		{"head then closes", func(c net.Conn, _ *bufio.Reader) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\npart")
			return false
		}, cutShort},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var executed atomic.Int64
			// Two such instances: the gateway could send a request to the
			// other one.
			a, b := rawModel(t, &executed, tt.act), rawModel(t, &executed, tt.act)
			rec := &recorder{}
			f := newFront(t, Config{})
			f.Update([]EndpointRoute{oneVariant("ep", rec, InstanceRoute{ID: "a", Addr: a}, InstanceRoute{ID: "b", Addr: b})})
			for i := range 5 {
				r := f.invoke(t, "ep", []byte(`{"n":1}`), nil)
				if r.status != http.StatusFailedDependency {
					t.Fatalf("invocation %d: %d %s, want 424", i+1, r.status, r.body)
				}
				if e := decodeError(t, r); e.Type != "ModelError" || !strings.Contains(e.Message, tt.how) || e.OriginalStatusCode != nil {
					t.Errorf("invocation %d: got %+v, want a ModelError saying %q, with no OriginalStatusCode", i+1, e, tt.how)
				}
				if got := r.header.Get("X-Amzn-Invoked-Production-Variant"); got != "AllTraffic" {
					t.Errorf("invocation %d: variant header %q, want AllTraffic", i+1, got)
				}
			}
			if n := executed.Load(); n != 5 {
				t.Errorf("the models ran %d invocations for 5 requests, want 5", n)
			}
			s := rec.all()
			if len(s) != 5 {
				t.Fatalf("%d samples, want 5", len(s))
			}
			for _, s := range s {
				if s.Status != http.StatusFailedDependency || !s.ModelError || s.ModelStatus != 0 {
					t.Errorf("sample %+v, want a 424 model error with no model status", s)
				}
			}
		})
	}
}

// TestRefusedIsResent: an instance that refuses connections cannot have
// seen the request, which goes to another instance and succeeds.
func TestRefusedIsResent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := ln.Addr().String()
	ln.Close()
	m := newModel(t, "alive", nil)
	rec := &recorder{}
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", rec, InstanceRoute{ID: "refusing", Addr: refusing}, m.route("alive"))})
	got := f.load(t, "ep", 40, 2, nil, byBody)
	if got["alive"] != 40 {
		t.Errorf("got %v, want all 40 answered by alive", got)
	}
	if n := m.calls.Load(); n != 40 {
		t.Errorf("the model ran %d invocations, want 40", n)
	}
	for _, s := range rec.all() {
		if s.Status != 200 || s.ModelError {
			t.Errorf("sample %+v, want 200", s)
		}
	}
}

// TestCutShortAnswer: a model that closes its connection in the middle of
// an answer it gave a Content-Length. If none of the answer has gone to
// the client yet, the client gets a ModelError in its place; if the head
// has gone out, the client's connection is cut before the body's end, so
// that the client sees an error and not a short body. Either way the
// invocation is recorded as a 424 model error.
func TestCutShortAnswer(t *testing.T) {
	for _, tt := range []struct {
		name string
		sent int // bytes of body the model sends of the 100,000 it announces
	}{
		{"early", 10},
		{"late", 64 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var executed atomic.Int64
			addr := rawModel(t, &executed, func(c net.Conn, _ *bufio.Reader) bool {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n%s", strings.Repeat("x", tt.sent))
				return false
			})
			rec := &recorder{}
			f := newFront(t, Config{})
			f.Update([]EndpointRoute{oneVariant("ep", rec, InstanceRoute{ID: "m", Addr: addr})})
			rc := dialFront(t, f)
			rc.send(invocation("ep", "", "x"))
			rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			res, err := http.ReadResponse(rc.br, nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			body, err := io.ReadAll(res.Body)
			if tt.sent < holdSize {
				if err != nil || res.StatusCode != http.StatusFailedDependency {
					t.Fatalf("got %d, %d bytes, %v; want a whole 424", res.StatusCode, len(body), err)
				}
				if !strings.Contains(string(body), `"ModelError"`) || !strings.Contains(string(body), cutShort) {
					t.Errorf("body %s, want a ModelError saying %q", body, cutShort)
				}
			} else {
				if res.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("got %d, %d bytes, %v; want 200 and a body cut short (unexpected EOF)", res.StatusCode, len(body), err)
				}
				rc.expectClosed("a cut answer")
			}
			if n := executed.Load(); n != 1 {
				t.Errorf("the model ran %d invocations, want 1", n)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(rec.all()) == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if s := rec.all(); len(s) != 1 || s[0].Status != http.StatusFailedDependency || !s[0].ModelError || s[0].ModelStatus != 0 {
				t.Errorf("samples %+v, want one 424 model error", s)
			}
		})
	}
}

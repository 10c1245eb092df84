package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-serve/kiln/internal/clock"
)

// netHTTPOnly makes newFront's gateways keep to net/http; TestNetHTTPOnly
// sets it to run the proxy tests again on that path.
var netHTTPOnly bool

// TestNetHTTPOnly runs the tests of the data plane's behaviour again with
// Config.NetHTTPOnly: every other test runs on the fast path, which serves
// every invocation on a connection the gateway could take over.
func TestNetHTTPOnly(t *testing.T) {
	netHTTPOnly = true
	defer func() { netHTTPOnly = false }()
	for _, tt := range []struct {
		name string
		test func(*testing.T)
	}{
		{"HeadersPassThrough", TestHeadersPassThrough},
		{"Errors", TestErrors},
		{"BodyLimit", TestBodyLimit},
		{"ModelError", TestModelError},
		{"ModelTimeout", TestModelTimeout},
		{"DeadInstanceIsRetried", TestDeadInstanceIsRetried},
		{"ModelClosedKeptAliveConn", TestModelClosedKeptAliveConn},
		{"AtMostOnce", TestAtMostOnce},
		{"RefusedIsResent", TestRefusedIsResent},
		{"CutShortAnswer", TestCutShortAnswer},
		{"AnswersCannotRunScript", TestAnswersCannotRunScript},
		{"ClientThatDoesNotRead", TestClientThatDoesNotRead},
		{"ResponseStreaming", TestResponseStreaming},
		{"LargeResponse", TestLargeResponse},
		{"ModelCutShort", TestModelCutShort},
		{"ClientGone", TestClientGone},
		{"Drain", TestDrain},
		{"DrainAfterRemoval", TestDrainAfterRemoval},
		{"SwapUnderLoad", TestSwapUnderLoad},
		{"WeightsSplitTraffic", TestWeightsSplitTraffic},
		{"TargetVariant", TestTargetVariant},
		{"FleetShares", TestFleetShares},
		{"RecorderSamples", TestRecorderSamples},
	} {
		t.Run(tt.name, tt.test)
	}
}

// rawConn is a client connection to a front that writes requests as bytes.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialFront(t *testing.T, f *front) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawConn) read() (*http.Response, string) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		rc.t.Fatalf("read body: %v", err)
	}
	return res, string(b)
}

// expectClosed checks that the gateway closed the connection.
func (rc *rawConn) expectClosed(after string) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := rc.br.ReadByte(); err != io.EOF {
		rc.t.Fatalf("read after %s = %q, %v; want EOF", after, b, err)
	}
}

// takenOver starts a front with the endpoint ep on m, and a client
// connection whose first invocation was answered: the gateway serves the
// connection itself from then on.
func takenOver(t *testing.T, cfg Config, m *model) (*front, *rawConn) {
	t.Helper()
	f := newFront(t, cfg)
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
	rc := dialFront(t, f)
	rc.send(invocation("ep", "", "a"))
	if res, _ := rc.read(); res.StatusCode != 200 {
		t.Fatalf("first invocation: %d", res.StatusCode)
	}
	return f, rc
}

func invocation(endpoint, headers, body string) string {
	return fmt.Sprintf("POST /endpoints/%s/invocations HTTP/1.1\r\nHost: kiln\r\n%sContent-Length: %d\r\n\r\n%s",
		endpoint, headers, len(body), body)
}

// echoModel answers with the request's Content-Type and body.
func echoModel(t *testing.T) *model {
	return newModel(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s|%s|%s", r.Header.Get("Content-Type"), r.Header.Get("X-Amzn-Sagemaker-Inference-Id"), b)
	})
}

func TestTakeOver(t *testing.T) {
	m := echoModel(t)
	f := newFront(t, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
	rc := dialFront(t, f)
	// The first request is read by net/http, the next ones by the fast
	// path; header names in any case, pipelined or not.
	rc.send(invocation("ep", "Content-Type: a/b\r\n", "one"))
	if res, body := rc.read(); res.StatusCode != 200 || body != "a/b||one" {
		t.Fatalf("first: %d %q", res.StatusCode, body)
	}
	f.connsMu.Lock()
	n := len(f.conns)
	f.connsMu.Unlock()
	if n != 1 {
		t.Fatalf("%d connections taken over, want 1", n)
	}
	rc.send(invocation("ep", "content-TYPE:  c/d \r\nx-amzn-sagemaker-inference-id: i-1\r\n", "two") +
		invocation("ep", "", "three"))
	for _, want := range []string{"c/d|i-1|two", "||three"} {
		res, body := rc.read()
		if res.StatusCode != 200 || body != want {
			t.Errorf("got %d %q, want 200 %q", res.StatusCode, body, want)
		}
		if res.Header.Get("X-Amzn-Invoked-Production-Variant") != "AllTraffic" || res.Header.Get("Date") == "" ||
			len(res.Header.Get("X-Amzn-Requestid")) != 36 || res.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("headers %v", res.Header)
		}
	}
	// Validation on the fast path answers as net/http's path does.
	// The bodies overwrite the read buffer that held the names.
	rc.send(invocation("nope", "", "1, 2") + invocation("ep", "X-Amzn-SageMaker-Target-Variant: Other\r\n", "3, 4") +
		invocation("ep", "X-Amzn-SageMaker-Inference-Id: "+strings.Repeat("i", 65)+"\r\n", ""))
	for _, want := range []string{"Endpoint nope of account", "Target variant Other not found for Endpoint ep", "inferenceId"} {
		res, body := rc.read()
		if res.StatusCode != 400 || res.Header.Get("X-Amzn-Errortype") != "ValidationError" || !strings.Contains(body, want) {
			t.Errorf("got %d %v %s, want 400 ValidationError containing %q", res.StatusCode, res.Header, body, want)
		}
	}
}

// TestHandBack sends on a taken-over connection what the fast path leaves
// to net/http: each is answered as net/http answers it, and invocations on
// the same connection after it still work.
func TestHandBack(t *testing.T) {
	m := echoModel(t)
	for _, tt := range []struct {
		name, req string
		status    int
		body      string
	}{
		{"other path", "GET /healthz HTTP/1.1\r\nHost: kiln\r\n\r\n", 200, "fallback /healthz"},
		{"chunked body", "POST /endpoints/ep/invocations HTTP/1.1\r\nHost: kiln\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, "||abc"},
		{"expect", "POST /endpoints/ep/invocations HTTP/1.1\r\nHost: kiln\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 200, "||hi"},
		{"repeated header", invocation("ep", "Content-Type: a\r\nContent-Type: b\r\n", "x"), 200, "a|"},
		{"escaped name", "POST /endpoints/%65p/invocations HTTP/1.1\r\nHost: kiln\r\nContent-Length: 1\r\n\r\nx", 200, "||x"},
		{"too large", "POST /endpoints/ep/invocations HTTP/1.1\r\nHost: kiln\r\nContent-Length: 6291457\r\n\r\n", 413, "6291456"},
		{"no host", "POST /endpoints/ep/invocations HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", 400, ""},
		{"bare LF", "POST /endpoints/ep/invocations HTTP/1.1\nHost: kiln\nContent-Length: 1\n\nx", 200, "||x"},
		{"head larger than the buffer", invocation("ep", "X-Pad: "+strings.Repeat("p", fastBufSize)+"\r\n", "x"), 200, "||x"},
		{"HTTP/1.0", "POST /endpoints/ep/invocations HTTP/1.0\r\nHost: kiln\r\nContent-Length: 1\r\n\r\nx", 200, "||x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var f *front
			f = newFront(t, Config{Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/endpoints/") {
					// As Kiln's mux does: invocations go to the gateway.
					f.Gateway.ServeHTTP(w, r)
					return
				}
				io.WriteString(w, "fallback "+r.URL.Path)
			})})
			f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
			rc := dialFront(t, f)
			rc.send(invocation("ep", "", "first"))
			if res, body := rc.read(); res.StatusCode != 200 || body != "||first" {
				t.Fatalf("first: %d %q", res.StatusCode, body)
			}
			rc.send(tt.req)
			res, body := rc.read()
			if res.StatusCode == 100 {
				res, body = rc.read()
			}
			if res.StatusCode != tt.status || !strings.Contains(body, tt.body) {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, body, tt.status, tt.body)
			}
			if res.Close || tt.status >= 400 {
				return
			}
			rc.send(invocation("ep", "", "after"))
			if res, body := rc.read(); res.StatusCode != 200 || body != "||after" {
				t.Errorf("after: %d %q", res.StatusCode, body)
			}
		})
	}
}

func TestConnectionClose(t *testing.T) {
	_, rc := takenOver(t, Config{}, echoModel(t))
	rc.send(invocation("ep", "Connection: close\r\n", "b"))
	if res, body := rc.read(); res.StatusCode != 200 || body != "||b" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	rc.expectClosed("Connection: close")
}

func TestCloseEndsTakenOverConnections(t *testing.T) {
	f, rc := takenOver(t, Config{}, echoModel(t))
	f.Close()
	rc.expectClosed("Close")
}

// TestShutdownWaits shuts the gateway down while an invocation on a
// taken-over connection is with the model: Shutdown waits for its answer,
// which reaches the client, and the connection closes after it.
func TestShutdownWaits(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	m := newModel(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Length") == "4" {
			close(arrived)
			<-release
		}
		io.WriteString(w, "done")
	})
	f, rc := takenOver(t, Config{}, m)
	rc.send(invocation("ep", "", "slow"))
	<-arrived

	shut := make(chan error, 1)
	go func() { shut <- f.Shutdown(t.Context()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with an invocation in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	// A Shutdown whose context ends gives up and says why.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := f.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with an expiring context = %v, want DeadlineExceeded", err)
	}
	close(release)
	if res, body := rc.read(); res.StatusCode != 200 || body != "done" {
		t.Errorf("in-progress invocation: %d %q, want 200 done", res.StatusCode, body)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	rc.expectClosed("Shutdown")
}

func TestParseResponseHead(t *testing.T) {
	for _, tt := range []struct {
		head      string
		ok        bool
		status    int
		length    int64
		keepAlive bool
		stream    bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, 200, 5, true, false},
		{"HTTP/1.1 200\r\ncontent-length: 5\r\n\r\n", true, 200, 5, true, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", true, 200, -1, true, false},
		{"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\r\n", true, 200, -1, false, true},
		{"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", true, 200, 1, false, false},
		{"HTTP/1.1 204 No Content\r\n\r\n", true, 204, 0, true, false},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", true, 200, 1, false, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, 0, 0, false, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, 0, 0, false, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, 0, 0, false, false},
		{"HTTP/1.1 2x0 OK\r\n\r\n", false, 0, 0, false, false},
		{"HTTP/2 200\r\n\r\n", false, 0, 0, false, false},
		{"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", false, 0, 0, false, false},
	} {
		var res upstreamResponse
		err := parseResponseHead([]byte(tt.head), &res)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err %v, want ok %v", tt.head, err, tt.ok)
			continue
		}
		if !tt.ok {
			continue
		}
		if res.status != tt.status || res.contentLength != tt.length || res.keepAlive != tt.keepAlive || res.eventStream != tt.stream {
			t.Errorf("%q: got %+v", tt.head, res)
		}
	}
}

// TestSlowHead sends a request head in pieces: the fast path waits for the
// rest of it.
func TestSlowHead(t *testing.T) {
	_, rc := takenOver(t, Config{}, echoModel(t))
	req := invocation("ep", "Content-Type: t/u\r\n", "body")
	for i := 0; i < len(req); i += 7 {
		rc.send(req[i:min(i+7, len(req))])
		time.Sleep(time.Millisecond)
	}
	if res, body := rc.read(); res.StatusCode != 200 || body != "t/u||body" {
		t.Errorf("got %d %q", res.StatusCode, body)
	}
}

func TestScanHead(t *testing.T) {
	for _, tt := range []struct {
		in   string
		end  int
		bare bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 27, false},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", 0, false},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0, false},
		{"GET / HTTP/1.1\r\nHost: a\n\n", 0, true},
		{"GET / HTTP/1.1\nHost: a\r\n\r\n", 0, true},
		{"\r\n\r\n", 4, false},
		{"", 0, false},
	} {
		end, err := scanHead([]byte(tt.in))
		if end != tt.end || (err != nil) != tt.bare {
			t.Errorf("scanHead(%q) = %d, %v; want %d, bare LF %v", tt.in, end, err, tt.end, tt.bare)
		}
	}
}

// TestAuthorize checks that Config.Authorize sees every request, the ones
// on a taken-over connection too, with the headers and body net/http would
// have shown it, and that a refusal keeps the request from the model.
func TestAuthorize(t *testing.T) {
	for _, only := range []bool{false, true} {
		t.Run(fmt.Sprintf("NetHTTPOnly=%v", only), func(t *testing.T) {
			m := echoModel(t)
			var mu sync.Mutex
			var seen []string
			authorize := func(r *http.Request) *Refusal {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("read body: %v", err)
				}
				r.Body = io.NopCloser(strings.NewReader(string(b)))
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, fmt.Sprintf("%s %s %s %d %s", r.Method, r.URL.Path, r.Host, r.ContentLength, b))
				if r.Header.Get("Authorization") != "Bearer good" {
					return &Refusal{Status: http.StatusForbidden, Code: "MissingAuthenticationTokenException", Message: "sign it"}
				}
				return nil
			}
			f := newFront(t, Config{Authorize: authorize, NetHTTPOnly: only})
			f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
			rc := dialFront(t, f)
			good := "authorization: Bearer good\r\n"
			for i, tc := range []struct {
				req    string
				status int
				want   string
			}{
				{invocation("ep", good, "one"), 200, "||one"},
				{invocation("ep", "", "two"), 403, `"__type":"MissingAuthenticationTokenException"`},
				{invocation("ep", "Authorization: Bearer bad\r\n", "three"), 403, `"message":"sign it"`},
				// A refusal comes before anything else is said about the request.
				{invocation("nope", "", "four"), 403, "MissingAuthenticationTokenException"},
				{invocation("nope", good, "five"), 400, "Endpoint nope of account"},
				{invocation("ep", good+"Content-Type: a/b\r\n", "six"), 200, "a/b||six"},
			} {
				rc.send(tc.req)
				res, body := rc.read()
				if res.StatusCode != tc.status || !strings.Contains(body, tc.want) {
					t.Errorf("request %d: %d %s, want %d containing %s", i+1, res.StatusCode, body, tc.status, tc.want)
				}
				if res.StatusCode == 403 && res.Header.Get("X-Amzn-Errortype") != "MissingAuthenticationTokenException" {
					t.Errorf("request %d: headers %v", i+1, res.Header)
				}
			}
			if n := m.calls.Load(); n != 2 {
				t.Errorf("the model saw %d invocations, want 2", n)
			}
			want := []string{"one", "two", "three", "four", "five", "six"}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != len(want) {
				t.Fatalf("Authorize saw %q", seen)
			}
			for i, s := range seen {
				ep := "ep"
				if i == 3 || i == 4 {
					ep = "nope"
				}
				if w := fmt.Sprintf("POST /endpoints/%s/invocations kiln %d %s", ep, len(want[i]), want[i]); s != w {
					t.Errorf("Authorize saw %q, want %q", s, w)
				}
			}
		})
	}
}

// TestIdleTimeout checks that a taken-over connection waiting longer than
// IdleTimeout for its next request is closed, and one used in time is not.
func TestIdleTimeout(t *testing.T) {
	m := echoModel(t)
	clk := clock.NewFake()
	f := newFront(t, Config{Clock: clk, IdleTimeout: time.Minute})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
	rc := dialFront(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		rc.send(invocation("ep", "", "x"))
		if res, body := rc.read(); res.StatusCode != 200 || body != "||x" {
			t.Fatalf("request %d: %d %q", i+1, res.StatusCode, body)
		}
		// The connection's idle timer is the only one left armed.
		if err := clk.BlockUntilContext(ctx, 1); err != nil {
			t.Fatalf("request %d: the idle timer was never armed: %v", i+1, err)
		}
		clk.Advance(59 * time.Second)
	}
	clk.Advance(2 * time.Second)
	rc.expectClosed("the idle timeout")
	for f.takenOver() != 0 {
		if ctx.Err() != nil {
			t.Fatal("the closed connection is still counted")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestParkedConn: a connection idle for parkAfter parks, giving its read
// buffer back; it still serves its next request, and the idle timeout
// still closes it.
func TestParkedConn(t *testing.T) {
	m := echoModel(t)
	clk := clock.NewFake()
	f, rc := takenOver(t, Config{Clock: clk, IdleTimeout: time.Minute}, m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	park := func() {
		t.Helper()
		if err := clk.BlockUntilContext(ctx, 1); err != nil {
			t.Fatalf("the idle timer was never armed: %v", err)
		}
		clk.Advance(parkAfter)
		waitUntil(t, "the connection to park", func() bool { return f.parked() == 1 })
	}
	park()
	rc.send(invocation("ep", "", "x"))
	if res, body := rc.read(); res.StatusCode != 200 || body != "||x" {
		t.Fatalf("request on a parked connection: %d %q", res.StatusCode, body)
	}
	park()
	// Parked, the connection waits for the rest of the idle timeout.
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("the idle timer was not armed again: %v", err)
	}
	clk.Advance(time.Minute - parkAfter)
	rc.expectClosed("the idle timeout of a parked connection")
}

func (f *front) parked() int {
	f.connsMu.Lock()
	defer f.connsMu.Unlock()
	n := 0
	for c := range f.conns {
		if c.parked {
			n++
		}
	}
	return n
}

func (f *front) takenOver() int {
	f.connsMu.Lock()
	defer f.connsMu.Unlock()
	return len(f.conns)
}

// TestSlowClient checks that a client that stops in the middle of a request,
// in its head or in its body, loses its connection after HeaderTimeout or
// BodyTimeout, on the gateway's clock.
func TestSlowClient(t *testing.T) {
	m := echoModel(t)
	for _, tt := range []struct {
		name    string
		partial string
		limit   time.Duration
	}{
		{"head", "POST /endpoints/ep/invocations HTTP/1.1\r\nHost: kiln\r\n", DefaultHeaderTimeout},
		{"body", "POST /endpoints/ep/invocations HTTP/1.1\r\nHost: kiln\r\nContent-Length: 10\r\n\r\nabc", DefaultBodyTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake()
			f, rc := takenOver(t, Config{Clock: clk}, m)
			rc.send(tt.partial)
			deadline := time.Now().Add(10 * time.Second)
			for !f.waitingForClient() {
				if time.Now().After(deadline) {
					t.Fatal("the gateway never waited for the rest of the request")
				}
				time.Sleep(time.Millisecond)
			}
			clk.Advance(tt.limit - time.Second)
			rc.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := rc.br.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("before the limit: %v, want the connection still open", err)
			}
			clk.Advance(2 * time.Second)
			rc.expectClosed("the limit")
		})
	}
}

// TestSlowFirstBody checks that a body that stalls in a connection's first
// request, which net/http reads, gets a 408 after BodyTimeout on the
// gateway's clock.
func TestSlowFirstBody(t *testing.T) {
	m := echoModel(t)
	clk := clock.NewFake()
	f := newFront(t, Config{Clock: clk})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
	rc := dialFront(t, f)
	rc.send("POST /endpoints/ep/invocations HTTP/1.1\r\nHost: kiln\r\nContent-Length: 10\r\n\r\nabc")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("no timer for the body: %v", err)
	}
	clk.Advance(DefaultBodyTimeout + time.Second)
	if res, body := rc.read(); res.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, "did not arrive within 1m0s") {
		t.Errorf("got %d %s", res.StatusCode, body)
	}
	if n := m.calls.Load(); n != 0 {
		t.Errorf("the model saw %d requests", n)
	}
}

// waitingForClient reports whether a taken-over connection waits for the
// rest of a request.
func (f *front) waitingForClient() bool {
	f.connsMu.Lock()
	defer f.connsMu.Unlock()
	for c := range f.conns {
		if c.waiting {
			return true
		}
	}
	return false
}

package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestInstanceWait: invocations sent to an endpoint that has no instance
// yet, as while the instances of a restarted Kiln start, wait for one and
// are answered by it, on both paths.
func TestInstanceWait(t *testing.T) {
	for _, netHTTP := range []bool{false, true} {
		t.Run(map[bool]string{false: "fast", true: "net/http"}[netHTTP], func(t *testing.T) {
			m := newModel(t, "m", nil)
			f := newFront(t, Config{NetHTTPOnly: netHTTP})
			f.Update([]EndpointRoute{oneVariant("ep", nil)})
			const n = 3
			done := make(chan result, n)
			for range n {
				go func() { done <- f.invoke(t, "ep", []byte(`{}`), nil) }()
			}
			waitUntil(t, "the invocations to wait", func() bool { return f.Waiting() == n })
			// A table that still has no instance for it changes nothing.
			f.Update([]EndpointRoute{oneVariant("ep", nil), oneVariant("other", nil)})
			f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
			for range n {
				if r := <-done; r.status != http.StatusOK {
					t.Errorf("waiting invocation: %d %s, want 200 from the instance that came", r.status, r.body)
				}
			}
			if m.calls.Load() != n || f.Waiting() != 0 {
				t.Errorf("model calls %d, waiting %d; want %d and 0", m.calls.Load(), f.Waiting(), n)
			}
		})
	}
}

// TestInstanceWaitEnds: a wait ends with a 503 after InstanceWait, at
// once when the Gateway closes or the endpoint is deleted, and when the
// client goes away.
func TestInstanceWaitEnds(t *testing.T) {
	noInstance := func(t *testing.T, r result) {
		t.Helper()
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("got %d %s, want 503", r.status, r.body)
		}
		if e := decodeError(t, r); e.Type != codeServiceUnavailable || !strings.Contains(e.Message, "no instance available") {
			t.Errorf("got %+v, want ServiceUnavailable saying that no instance is available", e)
		}
	}
	t.Run("timeout", func(t *testing.T) {
		f := newFront(t, Config{InstanceWait: 20 * time.Millisecond})
		f.Update([]EndpointRoute{oneVariant("ep", nil)})
		noInstance(t, f.invoke(t, "ep", nil, nil))
	})
	// waiting returns a Gateway with an invocation waiting for an
	// instance of an endpoint that has none, and where its answer comes.
	waiting := func(t *testing.T) (*front, <-chan result) {
		f := newFront(t, Config{InstanceWait: time.Hour})
		f.Update([]EndpointRoute{oneVariant("ep", nil)})
		done := make(chan result, 1)
		go func() { done <- f.invoke(t, "ep", nil, nil) }()
		waitUntil(t, "the invocation to wait", func() bool { return f.Waiting() == 1 })
		return f, done
	}
	t.Run("close", func(t *testing.T) {
		f, done := waiting(t)
		f.Close()
		noInstance(t, <-done)
	})
	t.Run("endpoint deleted", func(t *testing.T) {
		f, done := waiting(t)
		f.Update(nil)
		noInstance(t, <-done)
	})
	t.Run("client gone", func(t *testing.T) {
		f := newFront(t, Config{InstanceWait: time.Hour, NetHTTPOnly: true})
		f.Update([]EndpointRoute{oneVariant("ep", nil)})
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "POST", f.srv.URL+"/endpoints/ep/invocations", nil)
		go func() {
			waitUntil(t, "the invocation to wait", func() bool { return f.Waiting() == 1 })
			cancel()
		}()
		if _, err := f.client.Do(req); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want the client's cancellation", err)
		}
		waitUntil(t, "the wait to end", func() bool { return f.Waiting() == 0 })
	})
}

// waitUntil polls cond until it holds, and fails the test after 10 s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

package gateway

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
)

// instance is the state of one instance that outlives routing tables: its
// outstanding-request count and whether it still takes new requests. There
// is one per instance ID while the ID is in the table; tables point at it.
//
// The drain handshake relies on sequentially consistent atomics. A request
// increments inflight and then loads closed; Drain stores closed and then
// loads inflight. Either the request sees closed (and backs out), or Drain
// sees the request in flight (and waits for it): never neither.
type instance struct {
	id   string
	addr string
	url  *url.URL

	inflight atomic.Int64
	closed   atomic.Bool

	// draining is set under Gateway.mu by Drain; tables built afterwards
	// leave the instance out.
	draining bool

	mu      sync.Mutex
	drained chan struct{} // closed when inflight reaches 0 after closed is set

	// poolMu guards the fast path's idle connections to the instance.
	poolMu     sync.Mutex
	idle       []*upstreamConn
	poolClosed bool
}

func newInstance(r InstanceRoute) *instance {
	return &instance{
		id:   r.ID,
		addr: r.Addr,
		url:  &url.URL{Scheme: "http", Host: r.Addr, Path: "/invocations"},
	}
}

// acquire counts a request on the instance. It fails, counting nothing, when
// the instance no longer takes new requests.
func (in *instance) acquire() bool {
	in.inflight.Add(1)
	if !in.closed.Load() {
		return true
	}
	in.release()
	return false
}

func (in *instance) release() {
	if in.inflight.Add(-1) == 0 && in.closed.Load() {
		in.mu.Lock()
		if in.drained != nil {
			close(in.drained)
			in.drained = nil
		}
		in.mu.Unlock()
	}
}

// wait returns when no request is in flight on the closed instance, or when
// ctx ends.
func (in *instance) wait(ctx context.Context) error {
	for {
		in.mu.Lock()
		if in.inflight.Load() == 0 {
			in.mu.Unlock()
			return nil
		}
		if in.drained == nil {
			in.drained = make(chan struct{})
		}
		ch := in.drained
		in.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

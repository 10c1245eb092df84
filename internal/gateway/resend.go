package gateway

import (
	"context"
	"net/http/httptrace"
	"sync/atomic"
)

// An invocation reaches a model at most once, except when the model cannot
// have received it: then it is sent again, once, on a fresh connection to
// the same instance (the kept-alive one had been closed) or to another
// instance. A model that may have read the whole request and then failed
// (closed the connection, reset it, answered something that is not HTTP)
// is not sent it again, since it may have acted on it: the client gets a
// ModelError. Both paths classify their failures as unsentError or not,
// and mayResend alone decides.

// unsentError is the failure of a request that did not reach the model
// whole: the connection could not be made, writing the request failed, or
// the model had closed the connection before the request reached it (a
// kept-alive connection closed by a model server's idle timeout, or by a
// model that exited).
type unsentError struct{ err error }

func (e *unsentError) Error() string { return "request not sent: " + e.err.Error() }
func (e *unsentError) Unwrap() error { return e.err }

// mayResend reports whether a request whose attempt failed with err may be
// sent to a model again: only when the model cannot have received all of it.
func mayResend(err error) bool {
	_, ok := err.(*unsentError)
	return ok
}

// sendTrace follows one request on net/http's Transport far enough to tell
// whether a failed RoundTrip may be resent: the Transport reports the end
// of writing the request, and has reported it before RoundTrip returns an
// error (it waits for its write loop to end).
type sendTrace struct {
	conns  atomic.Int32 // connections obtained
	reused atomic.Bool  // the last one had served a request before
	// wrote is 0 until the request has been written, 1 when it was written
	// whole, 2 when writing it failed.
	wrote atomic.Int32
}

func (t *sendTrace) context(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(c httptrace.GotConnInfo) {
			t.conns.Add(1)
			t.reused.Store(c.Reused)
			t.wrote.Store(0)
		},
		WroteRequest: func(w httptrace.WroteRequestInfo) {
			if w.Err != nil {
				t.wrote.Store(2)
			} else {
				t.wrote.Store(1)
			}
		},
	})
}

// classify returns err, a RoundTrip's failure, as an unsentError when the
// model cannot have received any of the request: no connection was made,
// or the write on a kept-alive connection failed or never began (the model
// had closed it). A write that failed on a fresh connection may have
// delivered part of the request, its head say, to a model that acted on
// it: that is not resent.
func (t *sendTrace) classify(err error) error {
	if err == nil || t.wrote.Load() == 1 {
		return err
	}
	if t.conns.Load() > 0 && !t.reused.Load() {
		return err
	}
	return &unsentError{err}
}

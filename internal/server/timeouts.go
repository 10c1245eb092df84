package server

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kiln-serve/kiln/internal/gateway"
)

// Timeouts of the HTTP listener, for Config's zero values. Every
// connection, whichever path serves it, has a bounded wait for each request
// head (HeaderTimeout, from the first byte; IdleTimeout before it), for
// each request body, and for each write to a client that does not read.
// None bounds a whole response, so that the dashboard's live streams and
// streamed invocations last as long as they need.
const (
	DefaultHeaderTimeout = gateway.DefaultHeaderTimeout
	// DefaultBodyTimeout bounds reading the body of a request to the
	// APIs and the dashboard: they are small.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultInvokeBodyTimeout bounds reading an invocation's body (up to
	// 6 MiB).
	DefaultInvokeBodyTimeout = gateway.DefaultBodyTimeout
	// DefaultWriteTimeout bounds each write of an answer of the APIs and
	// the dashboard to a client that does not read it.
	DefaultWriteTimeout = 30 * time.Second
	DefaultIdleTimeout  = gateway.DefaultIdleTimeout
)

// timeouts are the listener's, with the defaults filled in.
type timeouts struct {
	header, body, invokeBody, write, idle time.Duration
}

func (c *Config) timeouts() timeouts {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	return timeouts{
		header:     or(c.HeaderTimeout, DefaultHeaderTimeout),
		body:       or(c.BodyTimeout, DefaultBodyTimeout),
		invokeBody: or(c.InvokeBodyTimeout, DefaultInvokeBodyTimeout),
		write:      or(c.WriteTimeout, DefaultWriteTimeout),
		idle:       or(c.IdleTimeout, DefaultIdleTimeout),
	}
}

// bounded gives every request read and write deadlines of its own.
// http.Server's ReadTimeout and WriteTimeout cannot do it: they bound the
// whole request and the whole response, and a read deadline that passes
// while a handler runs cancels its request's context, which would end the
// dashboard's live streams. So a request's body gets a deadline that is
// taken back once it has been read to its end (net/http's own read of a
// body a handler left unread, before the next request, is bounded by it
// too), and an answer of the APIs and the dashboard gets another before
// each write. Invocations get their body's deadline only: the gateway
// bounds its own waits, and a model's answer may stream for long.
//
// A socket's deadlines are wall-clock times, and net/http writes the end
// of an answer after the handler returns, where no timer of ours could
// follow it; so these deadlines are read from the wall clock, not from the
// server's Clock (the gateway, whose tests run on a fake clock, arms
// timers on its Clock instead).
func bounded(h http.Handler, t timeouts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		invocation := strings.HasPrefix(r.URL.Path, "/endpoints/")
		if r.Body != nil && r.Body != http.NoBody {
			d := t.body
			if invocation {
				d = t.invokeBody
			}
			rc.SetReadDeadline(time.Now().Add(d))
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
		if invocation {
			// A deadline an earlier answer on this connection left would
			// otherwise cut this one, or the connection the gateway takes
			// over.
			rc.SetWriteDeadline(time.Time{})
			h.ServeHTTP(w, r)
			return
		}
		// Set before the handler runs, and again after it, for the answer
		// net/http writes and flushes itself once the handler returns.
		rc.SetWriteDeadline(time.Now().Add(t.write))
		h.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: rc, d: t.write}, r)
		rc.SetWriteDeadline(time.Now().Add(t.write))
	})
}

// deadlineBody takes the read deadline back when the body has been read to
// its end: from then on net/http reads the connection only to notice the
// client going away.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// deadlineWriter gives each write to the client d to complete.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) WriteHeader(code int) {
	w.rc.SetWriteDeadline(time.Now().Add(w.d))
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

// FlushError lets http.ResponseController flush through the wrapper.
func (w *deadlineWriter) FlushError() error {
	w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is for handlers that assert http.Flusher.
func (w *deadlineWriter) Flush() { w.FlushError() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// ping calls GET /ping on an instance: nil means healthy (200 within
// PingTimeout, REFERENCE.md §4). The error reads well in a failure reason.
func (m *Manager) ping(ctx context.Context, addr string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	t := m.clock.AfterFunc(m.cfg.PingTimeout, func() {
		timedOut.Store(true)
		cancel()
	})
	defer t.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/ping", nil)
	if err != nil {
		return fmt.Errorf("GET /ping: %w", err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		if timedOut.Load() {
			return fmt.Errorf("GET /ping got no answer within %s", seconds(m.cfg.PingTimeout))
		}
		// "connect: connection refused" says it all; the address and
		// the transport's internals only make the reason longer.
		var oe *net.OpError
		var ue *url.Error
		if errors.As(err, &oe) {
			err = oe.Err
		} else if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET /ping: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /ping returned %s", resp.Status)
	}
	return nil
}

// withTimeout is context.WithTimeout on the manager's clock. The context
// has no deadline (a fake clock's time is not the runtime's); it is
// cancelled, with cause context.DeadlineExceeded, when d has passed.
func (m *Manager) withTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	t := m.clock.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

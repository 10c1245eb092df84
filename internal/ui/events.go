package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/kiln-serve/kiln"
)

// events streams Snapshots of one endpoint as server-sent events: one at
// once, then one per second of the handler's clock, until the client goes
// away (the request's context ends) or the server shuts down (Config.Done).
// Each is an event named "snapshot" whose data is the Snapshot's JSON. If
// the endpoint is deleted, a "gone" event ends the stream.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("endpoint")
	if err := kiln.ValidateName("endpoint", name); err != nil {
		writeError(w, http.StatusBadRequest, kiln.EINVALID, kiln.ErrorMessage(err))
		return
	}
	ctx := r.Context()
	st := newStream(h, name)
	first, err := st.snapshot(ctx)
	if err != nil {
		code := kiln.ErrorCode(err)
		var gone errEndpointGone
		if errors.As(err, &gone) {
			code = kiln.ENOTFOUND
		}
		status := http.StatusInternalServerError
		switch code {
		case kiln.ENOTFOUND:
			status = http.StatusNotFound
		case kiln.EINVALID:
			status = http.StatusBadRequest
		default:
			h.log.Error("dashboard: reading an endpoint", "endpoint", name, "err", err)
		}
		writeError(w, status, code, kiln.ErrorMessage(err))
		return
	}

	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	// Proxies such as nginx would otherwise hold the events back.
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A reconnecting browser waits this long (EventSource's retry field).
	fmt.Fprint(w, "retry: 2000\n\n")

	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			h.log.Error("dashboard: encoding a snapshot", "endpoint", name, "err", err)
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("snapshot", first) {
		return
	}

	t := h.clk.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.done: // nil: never
			return
		case <-t.Chan():
		}
		snap, err := st.snapshot(ctx)
		var gone errEndpointGone
		switch {
		case errors.As(err, &gone):
			send("gone", errorBody{Code: kiln.ENOTFOUND, Message: kiln.ErrorMessage(gone.err)})
			return
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			// The store may be busy or restarting; the page keeps its
			// charts and says so, and the next second tries again.
			h.log.Warn("dashboard: reading an endpoint", "endpoint", name, "err", err)
			if !send("problem", errorBody{Code: kiln.ErrorCode(err), Message: kiln.ErrorMessage(err)}) {
				return
			}
			continue
		}
		if !send("snapshot", snap) {
			return
		}
	}
}

package demomodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxBodyBytes is the largest invocation body accepted, the runtime API's
// limit (6 MiB).
const MaxBodyBytes = 6 << 20

// VersionHeader carries Config.Version on every response, so a caller can
// tell which variant answered even when the body is an error.
const VersionHeader = "X-Kiln-Demo-Version"

// handler serves /ping and /invocations. Its model and config are read-only;
// the random source is behind mu and the invocation count is atomic.
type handler struct {
	cfg     Config
	model   *Model
	version string
	sleep   func(ctx context.Context, d time.Duration) error
	mux     *http.ServeMux

	mu  sync.Mutex
	rng *rand.Rand

	invocations atomic.Int64
}

// NewHandler returns the demo model's HTTP API for cfg after validating it.
// It does no I/O: cfg.ModelDataURL is ignored and cfg.Model (or the default
// model) is served.
func NewHandler(cfg Config) (http.Handler, error) {
	return newHandler(cfg)
}

func newHandler(cfg Config) (*handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := cfg.Model
	if m == nil {
		m = DefaultModel()
	}
	h := &handler{
		cfg:     cfg,
		model:   m,
		version: cfg.version(),
		sleep:   sleeper(cfg.Sleep),
		mux:     http.NewServeMux(),
		// PCG wants 128 bits of seed; the second half is a fixed odd
		// constant so that one uint64 names a whole run.
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
	}
	h.mux.HandleFunc("GET /ping", h.ping)
	h.mux.HandleFunc("POST /invocations", h.invoke)
	return h, nil
}

// sleeper returns a Sleep that skips non-positive durations, so a Config.Sleep
// hook in tests is called only for delays that were asked for.
func sleeper(hook func(context.Context, time.Duration) error) func(context.Context, time.Duration) error {
	if hook == nil {
		hook = realSleep
	}
	return func(ctx context.Context, d time.Duration) error {
		if d <= 0 {
			return ctx.Err()
		}
		return hook(ctx, d)
	}
}

func realSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(VersionHeader, h.version)
	h.mux.ServeHTTP(w, r)
}

func (h *handler) ping(w http.ResponseWriter, _ *http.Request) {
	if h.cfg.NeverHealthy {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// response is the answer to a non-streaming invocation.
type response struct {
	Predictions  []Prediction `json:"predictions"`
	ModelVersion string       `json:"model_version"`
	Instance     string       `json:"instance"`
}

// event is one server-sent event of a streaming invocation.
type event struct {
	Index        int     `json:"index"`
	Score        float64 `json:"score"`
	Label        string  `json:"label"`
	ModelVersion string  `json:"model_version"`
	Instance     string  `json:"instance"`
}

// errorBody is the answer to any invocation that fails.
type errorBody struct {
	Error        string `json:"error"`
	Message      string `json:"message"`
	ModelVersion string `json:"model_version"`
	Instance     string `json:"instance"`
}

func (h *handler) invoke(w http.ResponseWriter, r *http.Request) {
	n := h.invocations.Add(1)
	if limit := h.cfg.CrashAfter; limit > 0 {
		if n > limit {
			// The process is going down; a real crash would drop this
			// connection too.
			panic(http.ErrAbortHandler)
		}
		if n == limit {
			w.Header().Set("Connection", "close")
			if h.cfg.OnCrash != nil {
				defer h.cfg.OnCrash(r)
			}
		}
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			h.writeError(w, http.StatusRequestEntityTooLarge, "body_too_large",
				fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes))
			return
		}
		h.writeError(w, http.StatusBadRequest, "invalid_input", "read request body: "+err.Error())
		return
	}

	if err := h.sleep(r.Context(), h.latency()); err != nil {
		return // the caller is gone; nobody reads an answer
	}
	if h.failThisOne() {
		h.writeError(w, h.cfg.errorStatus(), "injected_error",
			fmt.Sprintf("injected error (%s=%v)", EnvErrorRate, h.cfg.ErrorRate))
		return
	}

	rows, err := parseRows(r.Header.Get("Content-Type"), body, h.model.Features())
	if err != nil {
		kind := "invalid_input"
		var ie *inputError
		if errors.As(err, &ie) {
			kind = ie.kind
		}
		h.writeError(w, http.StatusBadRequest, kind, err.Error())
		return
	}
	// Every row is scored before anything is sent, so that a row the model
	// cannot score is a 400 even for a stream, whose status is sent first.
	preds := make([]Prediction, len(rows))
	for i, row := range rows {
		p, err := h.model.Predict(row)
		if err != nil {
			h.writeError(w, http.StatusBadRequest, "invalid_input", fmt.Sprintf("row %d: %v", i+1, err))
			return
		}
		preds[i] = p
	}

	if wantsEventStream(r.Header.Values("Accept")) {
		h.stream(w, r, preds)
		return
	}
	h.writeJSON(w, http.StatusOK, response{Predictions: preds, ModelVersion: h.version, Instance: h.cfg.InstanceID})
}

// stream sends one event per prediction, flushing each so that a proxy in
// front of the model can be seen to pass events on as they come.
func (h *handler) stream(w http.ResponseWriter, r *http.Request, preds []Prediction) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for i, p := range preds {
		if i > 0 {
			if err := h.sleep(r.Context(), h.cfg.StreamDelay); err != nil {
				return
			}
		}
		data, err := json.Marshal(event{Index: i, Score: p.Score, Label: p.Label, ModelVersion: h.version, Instance: h.cfg.InstanceID})
		if err != nil {
			return // cannot happen: scores are finite
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return
		}
	}
}

func wantsEventStream(accept []string) bool {
	for _, v := range accept {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

func (h *handler) latency() time.Duration {
	d := h.cfg.Latency
	if j := h.cfg.LatencyJitter; j > 0 {
		h.mu.Lock()
		d += time.Duration(h.rng.Int64N(int64(j) + 1))
		h.mu.Unlock()
	}
	return d
}

func (h *handler) failThisOne() bool {
	switch rate := h.cfg.ErrorRate; {
	case rate <= 0:
		return false
	case rate >= 1:
		return true
	default:
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.rng.Float64() < rate
	}
}

func (h *handler) writeError(w http.ResponseWriter, status int, kind, msg string) {
	h.writeJSON(w, status, errorBody{Error: kind, Message: msg, ModelVersion: h.version, Instance: h.cfg.InstanceID})
}

// writeJSON sends v with its length declared rather than chunked.
func (h *handler) writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal","message":"encode response"}`, http.StatusInternalServerError)
		return
	}
	data = append(data, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

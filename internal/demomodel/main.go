package demomodel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ErrCrashed is wrapped by the error Main returns when KILN_DEMO_CRASH_AFTER
// fires; the command exits with status 1.
var ErrCrashed = errors.New("demo model crashed as " + EnvCrashAfter + " asks")

// modelLoadTimeout bounds fetching the model data over HTTP.
const modelLoadTimeout = 60 * time.Second

// Main runs the demo model configured by env (os.Getenv in production) until
// ctx is cancelled, then shuts down gracefully and returns nil. Log lines go
// to stderr; stdout is not written. A configuration error is returned before
// anything listens, naming every bad variable.
func Main(ctx context.Context, env func(string) string, stdout, stderr io.Writer) error {
	cfg, err := ConfigFromEnv(env)
	if err != nil {
		return fmt.Errorf("demo model configuration: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port))
	return run(ctx, cfg, logger, func(ctx context.Context) (net.Listener, error) {
		var lc net.ListenConfig
		return lc.Listen(ctx, "tcp", addr)
	})
}

// connKey keys the connection a request arrived on in its context.
type connKey struct{}

// run loads the model, waits out the startup delay, listens and serves until
// ctx is done or the model crashes as configured.
func run(ctx context.Context, cfg Config, logger *slog.Logger, listen func(context.Context) (net.Listener, error)) error {
	source := "built-in"
	if cfg.Model == nil && cfg.ModelDataURL != "" {
		lctx, cancel := context.WithTimeout(ctx, modelLoadTimeout)
		m, err := LoadModel(lctx, cfg.ModelDataURL, nil)
		cancel()
		if err != nil {
			return err
		}
		cfg.Model, source = m, cfg.ModelDataURL
	} else if cfg.Model != nil {
		source = "given"
	}

	// The crash waits until the connection that carried the last answer
	// goes idle or closed: only then has the whole answer been written.
	var (
		mu        sync.Mutex
		doomed    net.Conn
		crashOnce sync.Once
		crashed   = make(chan struct{})
	)
	crash := func() { crashOnce.Do(func() { close(crashed) }) }
	cfg.OnCrash = func(r *http.Request) {
		c, ok := r.Context().Value(connKey{}).(net.Conn)
		if !ok {
			crash()
			return
		}
		mu.Lock()
		doomed = c
		mu.Unlock()
	}
	h, err := newHandler(cfg)
	if err != nil {
		return fmt.Errorf("demo model configuration: %w", err)
	}

	if err := h.sleep(ctx, cfg.StartupDelay); err != nil {
		logger.Info("demo model stopped before listening", "cause", context.Cause(ctx))
		return nil
	}
	ln, err := listen(ctx)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			if s != http.StateIdle && s != http.StateClosed && s != http.StateHijacked {
				return
			}
			mu.Lock()
			hit := doomed != nil && doomed == c
			mu.Unlock()
			if hit {
				crash()
			}
		},
	}
	logger.Info("demo model listening",
		"addr", ln.Addr().String(),
		"version", h.version,
		"instance", cfg.InstanceID,
		"model", source,
		"features", h.model.Features(),
		"seed", cfg.Seed,
		"error_rate", cfg.ErrorRate,
		"error_status", cfg.errorStatus(),
		"latency", cfg.Latency,
		"latency_jitter", cfg.LatencyJitter,
		"never_healthy", cfg.NeverHealthy,
		"startup_delay", cfg.StartupDelay,
		"crash_after", cfg.CrashAfter,
		"stream_delay", cfg.StreamDelay,
	)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case <-ctx.Done():
		// Requests in flight finish; the supervisor's SIGKILL bounds how
		// long that may take, and so does the grace period here.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultShutdownGrace)
		defer cancel()
		err := srv.Shutdown(sctx)
		<-served
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("shutdown: %w", err)
		}
		logger.Info("demo model stopped", "cause", context.Cause(ctx), "invocations", h.invocations.Load())
		return nil
	case <-crashed:
		_ = srv.Close()
		<-served
		logger.Error("demo model crashed", "cause", EnvCrashAfter, "invocations", h.invocations.Load())
		return fmt.Errorf("%w after %d invocations", ErrCrashed, cfg.CrashAfter)
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
}

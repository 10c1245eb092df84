package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/alarm"
	"github.com/kiln-serve/kiln/internal/api"
	"github.com/kiln-serve/kiln/internal/api/cloudwatch"
	"github.com/kiln-serve/kiln/internal/api/native"
	"github.com/kiln-serve/kiln/internal/api/sagemaker"
	"github.com/kiln-serve/kiln/internal/clock"
	"github.com/kiln-serve/kiln/internal/deploy"
	"github.com/kiln-serve/kiln/internal/fleet"
	"github.com/kiln-serve/kiln/internal/gateway"
	"github.com/kiln-serve/kiln/internal/judge"
	"github.com/kiln-serve/kiln/internal/metrics"
	"github.com/kiln-serve/kiln/internal/service"
	"github.com/kiln-serve/kiln/internal/store"
	"github.com/kiln-serve/kiln/internal/ui"
)

// Config is what a server needs. Zero values mean the documented defaults.
type Config struct {
	// Addr is where to listen; "127.0.0.1:0" picks a free port.
	Addr string
	// DataDir holds the store (kiln.db) and instance logs.
	DataDir string
	// Region and Account appear in ARNs; defaults us-east-1, 000000000000.
	Region, Account string
	// AllowedCommands, if not empty, are the only executables or command
	// line patterns a model's Image may start (fleet.CommandPolicy).
	AllowedCommands []string
	// KilnBinary is what a model's Image runs for the bare word "kiln"
	// (fleet.Config.KilnBinary). If empty, the running executable.
	KilnBinary string
	// InstanceUser, if not empty, is the user instances run as; Kiln must
	// then run as root. Empty runs them as Kiln's own user.
	InstanceUser string
	// StartupTimeout bounds a new instance's first health check (default 240s).
	StartupTimeout time.Duration
	// StopTimeout is the grace between SIGTERM and SIGKILL (default 30s).
	StopTimeout time.Duration
	// InstanceWait is how long an invocation waits for an instance of its
	// endpoint to start (default 30s; negative for no wait).
	InstanceWait time.Duration
	// PingInterval is the health-check period (default 1s).
	PingInterval time.Duration
	// Credentials are the access keys that may call Kiln. Empty means
	// unauthenticated calls are accepted, and then Kiln listens only on
	// loopback addresses.
	Credentials *api.Credentials
	// InvokeAuth requires signed (SigV4) invocations too; otherwise
	// invocations are open to whoever reaches the address.
	InvokeAuth bool
	// AllowedHosts are the names, besides loopback ones and Addr's host,
	// that requests may carry in their Host header (see api.GuardConfig);
	// "*" allows any, and needs Credentials.
	AllowedHosts []string
	// TLSCertFile and TLSKeyFile, if set, make Kiln serve HTTPS (and
	// HTTP/2) with this certificate and key, in PEM.
	TLSCertFile, TLSKeyFile string
	// InsecureHTTP lets Kiln serve plain HTTP beyond loopback with
	// credentials, for a TLS-terminating proxy in front; without it Kiln
	// refuses to.
	InsecureHTTP bool
	// OpenMetrics serves /metrics without authentication even when
	// credentials are set; otherwise it needs the read role.
	OpenMetrics bool
	// AuthFailureBurst and AuthFailureEvery limit failed authentications
	// per client address: Burst in a row, then one per Every (defaults 20
	// and 3s; see api.FailureLimiter).
	AuthFailureBurst int
	AuthFailureEvery time.Duration
	// Quotas bound what clients can make Kiln store; if nil,
	// service.DefaultQuotas.
	Quotas *service.Quotas
	// HeaderTimeout, BodyTimeout, InvokeBodyTimeout, WriteTimeout and
	// IdleTimeout bound the waits for a client on every connection (see
	// timeouts.go); zero means DefaultHeaderTimeout and so on.
	HeaderTimeout, BodyTimeout, InvokeBodyTimeout, WriteTimeout, IdleTimeout time.Duration
	// Clock defaults to the wall clock.
	Clock clock.Clock
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
}

// Server is one running Kiln.
type Server struct {
	cfg     Config
	auth    *api.Auth // every API's, and invocations' with --invoke-auth
	tls     *tls.Config
	log     *slog.Logger
	clk     clock.Clock
	st      store.Store
	reg     *prometheus.Registry
	metrics *metrics.Store
	custom  *metrics.Custom
	gw      *gateway.Gateway
	fleet   *fleet.Manager
	alarms  *alarm.Engine
	judges  *judge.Judges
	ctrl    *deploy.Controller
	records *service.Records
	svc     *service.Service
	health  *healthMetrics
	handler http.Handler
	guard   *api.Guard

	ln       net.Listener
	stopping chan struct{} // closed when shutdown begins: ends the dashboard's live streams

	// Set by Run: what Close stops.
	cancel   context.CancelFunc // ends the parts' context
	httpSrv  *http.Server
	wg       sync.WaitGroup // every goroutine Run starts
	failed   chan struct{}  // closed when a part fails
	errMu    sync.Mutex
	err      error // the first part's failure
	closed   sync.Once
	closeErr error

	mu        sync.Mutex
	endpoints map[string]kiln.Endpoint   // the store's endpoints, as last seen
	recorders map[string]*seriesRecorder // by endpoint/variant/config
	kick      chan struct{}
}

// New opens the store and builds every part; Run starts them.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./kiln-data"
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "000000000000"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Credentials == nil {
		cfg.Credentials = &api.Credentials{}
	}
	if cfg.Credentials.Empty() {
		if err := checkListenAddr(cfg.Addr); err != nil {
			return nil, err
		}
		if cfg.InvokeAuth {
			return nil, fmt.Errorf("--invoke-auth needs credentials (--credentials-file, or KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY)")
		}
	}
	tlsCfg, err := checkTransport(&cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	guard, err := api.NewGuard(api.GuardConfig{Addr: cfg.Addr, AllowedHosts: cfg.AllowedHosts, Authenticated: !cfg.Credentials.Empty(), Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "kiln.db"), &store.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	s := &Server{
		cfg: cfg, auth: newAuth(cfg), tls: tlsCfg, guard: guard, log: cfg.Logger, clk: cfg.Clock, st: st,
		reg:       prometheus.NewRegistry(),
		stopping:  make(chan struct{}),
		failed:    make(chan struct{}),
		endpoints: map[string]kiln.Endpoint{},
		recorders: map[string]*seriesRecorder{},
		kick:      make(chan struct{}, 1),
	}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = metrics.New(s.clk, s.reg)
	s.custom = metrics.NewCustom(s.clk)
	s.gw = gateway.New(gateway.Config{Clock: s.clk, Logger: s.log, Region: cfg.Region, Account: cfg.Account,
		// The gateway serves the invocations of the connections it takes
		// over, and hands every other request on them back to the whole mux.
		Fallback:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }),
		Authorize: s.guardInvocations(s.invokeAuth()), InstanceWait: cfg.InstanceWait,
		HeaderTimeout: cfg.timeouts().header, BodyTimeout: cfg.timeouts().invokeBody, IdleTimeout: cfg.timeouts().idle,
		WriteTimeout: cfg.timeouts().write})
	s.fleet, err = fleet.New(fleet.Config{
		Clock:           s.clk,
		Logger:          s.log,
		LogDir:          filepath.Join(cfg.DataDir, "logs"),
		PingInterval:    cfg.PingInterval,
		StartupTimeout:  cfg.StartupTimeout,
		StopTimeout:     cfg.StopTimeout,
		AllowedCommands: cfg.AllowedCommands,
		KilnBinary:      kilnBinary(cfg.KilnBinary),
		InstanceUser:    cfg.InstanceUser,
		Drainer:         s.gw,
		OnChange:        s.fleetChanged,
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("start fleet manager: %w", err)
	}
	s.records = service.NewRecords(st, s.log)
	s.judges = judge.New(s.clk)
	s.alarms = alarm.NewEngine(alarm.Config{
		Clock:      s.clk,
		Logger:     s.log,
		Judges:     s.judges,
		Local:      AlarmSource(s.metrics, s.custom),
		Prometheus: alarm.NewPrometheusSource(&http.Client{Timeout: 5 * time.Second}),
		Repo:       alarmRepo{s.records},
		// A second's data is complete the moment the second ends; looking
		// five times a second sees it within 200 ms rather than within a
		// whole second, which is most of a rollback's reaction time.
		Interval: 200 * time.Millisecond,
		// The controller is built below; the engine calls this only once
		// Run has started it.
		OnChange: func(string, kiln.AlarmState) { s.ctrl.Notify("") },
	})
	s.ctrl = deploy.NewController(deploy.Config{
		Clock:  s.clk,
		Logger: s.log,
		Store:  deployStore{s.records},
		Fleets: fleetStatus{s.fleet},
		Alarms: s.alarms,
		Judges: judgeVerdicts{s.judges},
		// Requests counts what new fleets answer during bakes.
		Requests: fleetRequests{s.metrics, s.clk.Now},
	})
	s.svc = service.New(service.Options{
		Records:    s.records,
		Metrics:    metricsView{s.metrics, s.custom},
		Fleet:      fleetView{s},
		Controller: s.ctrl,
		Alarms:     s.alarms,
		Quotas:     cfg.Quotas,
		Region:     cfg.Region,
		Account:    cfg.Account,
		Clock:      s.clk,
	})
	s.health = newHealthMetrics(s.reg, s)
	s.handler = bounded(s.routes(), cfg.timeouts())
	return s, nil
}

// checkListenAddr refuses to expose the unauthenticated API beyond loopback.
func checkListenAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to listen on %s: no credentials are configured, and without them anyone who reaches the API can run commands on this host through a model's Image; listen on a loopback address such as 127.0.0.1", addr)
	}
	return nil
}

// invokeAuth is the gateway's check of invocations under --invoke-auth
// (see authInvoke).
func (s *Server) invokeAuth() func(*http.Request) *gateway.Refusal {
	if !s.cfg.InvokeAuth {
		return nil
	}
	return s.authInvoke
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// Clients sign with the wall clock, so the skew check uses it too.
	auth := s.auth
	v1 := &native.API{Service: s.svc, Logger: s.log, Recent: s.metrics.Recent}
	mux.Handle("/v1/", s.native(v1.Handler()))
	mux.Handle("POST /v1/tokens", s.native(auth.TokenHandler()))
	// With --invoke-auth the gateway checks invocations itself (see
	// invokeAuth), on every connection it serves.
	mux.Handle("/endpoints/", s.gw)
	sm := &sagemaker.API{Service: s.svc, Region: s.cfg.Region, Account: s.cfg.Account, Logger: s.log}
	cw := &cloudwatch.API{Service: s.svc, Region: s.cfg.Region, Account: s.cfg.Account, Logger: s.log, Clock: s.clk}
	awsAPI := api.AWSHandler(sm, cw, auth)
	mux.Handle("POST /{$}", awsAPI)
	mux.Handle("POST /service/", awsAPI)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", s.metricsAuth(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg})))
	uiCfg := ui.Config{Service: s.svc, Clock: s.clk, Logger: s.log, Done: s.stopping, Sessions: s.sessions()}
	mux.Handle("/ui/", ui.Handler(uiCfg))
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	return s.guard.Handler(mux)
}

// Handler serves everything Kiln serves over HTTP.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr is the address the server listens on, once Run has returned.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Service is the server's control plane, for in-process callers.
func (s *Server) Service() kiln.Service { return s.svc }

// Failed is closed when a part of the running server fails; Close then
// returns the failure.
func (s *Server) Failed() <-chan struct{} { return s.failed }

// Run loads what the store holds, starts every part and listens. It returns
// once Kiln serves (Addr then says where), or with what kept it from
// serving. ctx bounds the start only; the server serves until Close, which
// must be called once New has succeeded, whatever Run returned.
func (s *Server) Run(ctx context.Context) error {
	if s.cancel != nil {
		return errors.New("server: Run called twice")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	// The parts keep ctx's values but not its end: Close ends them.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel

	// Load what the store holds before anything else runs, so that the
	// endpoints that existed come back.
	rev, err := s.loadEndpoints(ctx)
	if err != nil {
		ln.Close()
		return err
	}
	alarmRev, err := s.loadAlarms(ctx)
	if err != nil {
		ln.Close()
		return err
	}

	run := func(name string, f func(context.Context) error) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := f(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				s.fail(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	run("fleet", s.fleet.Run)
	run("alarms", s.alarms.Run)
	run("controller", s.ctrl.Run)
	run("endpoint watch", func(ctx context.Context) error { return s.watchEndpoints(ctx, rev+1) })
	run("alarm watch", func(ctx context.Context) error { return s.watchAlarms(ctx, alarmRev+1) })
	run("router", s.routeLoop)

	to := s.cfg.timeouts()
	s.httpSrv = &http.Server{Handler: s.handler, ReadHeaderTimeout: to.header, IdleTimeout: to.idle, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.serve(s.httpSrv, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.fail(fmt.Errorf("http: %w", err))
		}
	}()
	s.log.Info("kiln listening", "addr", ln.Addr().String(), "tls", s.tls != nil, "data_dir", s.cfg.DataDir)
	return nil
}

// fail records a part's failure and stops the other parts; the listener
// serves on until Close.
func (s *Server) fail(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	s.cancel()
	close(s.failed)
}

// Close stops every part, every instance process and every goroutine Run
// started, and closes the store. It returns the failure of a part, if one
// failed, and is safe to call more than once.
func (s *Server) Close() error {
	s.closed.Do(func() {
		close(s.stopping)
		if s.cancel != nil {
			s.shutdown()
		}
		s.errMu.Lock()
		err := s.err
		s.errMu.Unlock()
		if cerr := s.st.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
		}
		s.closeErr = err
	})
	return s.closeErr
}

func (s *Server) shutdown() {
	s.log.Info("kiln stopping")
	s.cancel()
	if s.httpSrv == nil { // Run failed before it served
		s.ln.Close()
		s.wg.Wait()
		return
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	// The gateway shuts down alongside net/http's server, so that the
	// invocations waiting for an instance, which net/http's Shutdown would
	// wait for, get their answer at once; invocations on connections the
	// gateway took over finish too.
	gwErr := make(chan error, 1)
	go func() { gwErr <- s.gw.Shutdown(shutdownCtx) }()
	s.httpSrv.Shutdown(shutdownCtx)
	if err := <-gwErr; err != nil {
		s.log.Warn("kiln stopping", "err", err)
	}
	s.wg.Wait()
}

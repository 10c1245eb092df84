package gateway

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-serve/kiln/internal/clock"
)

// Defaults for Config's zero values.
const (
	DefaultModelTimeout = 60 * time.Second
	DefaultMaxBody      = 6 << 20 // 6 MiB, SageMaker's payload limit
	DefaultAccount      = "000000000000"
	DefaultDialTimeout  = 2 * time.Second
	// DefaultIdleTimeout outlasts the idle timeouts of common client
	// pools (Go's http.Transport keeps idle connections for 90 s), so
	// that clients, not the gateway, usually close idle connections.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultHeaderTimeout bounds reading a request head once its first
	// byte has arrived.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout bounds reading an invocation's body: 6 MiB at
	// 100 KiB/s.
	DefaultBodyTimeout = 60 * time.Second
	// DefaultWriteTimeout bounds each write to a client that does not
	// read its answer.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultInstanceWait covers the start of a typical model server, so
	// that invocations sent while the instances of a restarted Kiln start
	// are answered rather than refused.
	DefaultInstanceWait = 30 * time.Second
)

// Recorder receives one Sample per request a fleet answers. The server adapts
// the metrics store to it. Record is called on the request path, so it must
// be fast and safe for concurrent use.
type Recorder interface {
	Record(s Sample)
}

// Sample describes one request.
type Sample struct {
	// Status is the HTTP status the client got. 499 means the client went
	// away before it got an answer.
	Status int
	// ModelStatus is the status the model answered, 0 if it did not answer
	// (it could not be reached, or timed out). SageMaker's 4XX and 5XX
	// error metrics count the model's answers, which the client sees as
	// 424 ModelError.
	ModelStatus int
	// ModelError is true when the model answered non-2xx, could not be
	// reached, or timed out.
	ModelError bool
	// ModelLatency runs from sending the request to the model until its
	// response headers arrive; OverheadLatency is the rest of the request's
	// time in the gateway.
	ModelLatency, OverheadLatency time.Duration
	// Instances is the number of routable instances of the variant when the
	// request was routed.
	Instances int
	// Time is when the request ended, read from Config.Clock; a recorder
	// can use it rather than read the clock again.
	Time time.Time
}

// Config configures a Gateway. Every field is optional.
type Config struct {
	// Clock tells the time for latencies and model timeouts. If nil, the
	// wall clock is used.
	Clock clock.Clock
	// Logger gets socket errors and timeouts. If nil, nothing is logged.
	Logger *slog.Logger
	// Region and Account appear in error messages, as SageMaker's do. If
	// Account is empty, DefaultAccount is used.
	Region, Account string
	// ModelTimeout bounds the wait for the model's response headers, and
	// then each wait for more of its body. If zero, DefaultModelTimeout.
	ModelTimeout time.Duration
	// MaxBody is the largest request body accepted. If zero, DefaultMaxBody.
	MaxBody int64
	// Rand returns uniformly random bits for routing and request IDs. It
	// must be safe for concurrent use. If nil, math/rand/v2's Uint64.
	Rand func() uint64
	// Transport sends requests to models. If nil, the Gateway uses its own
	// http.Transport tuned for many keep-alive connections to few hosts,
	// which Close closes. It must report httptrace's GotConn and
	// WroteRequest, as http.Transport does: a failed request it has not
	// reported written whole is sent again.
	Transport http.RoundTripper
	// DialTimeout bounds connecting to a model. If zero,
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// IdleTimeout is how long a client connection the Gateway took over
	// may wait for its next request before the Gateway closes it. If
	// zero, DefaultIdleTimeout. A server in front should give its
	// http.Server the same IdleTimeout.
	IdleTimeout time.Duration
	// HeaderTimeout bounds reading a request head on a connection the
	// Gateway took over, from its first byte (and on the server it hands
	// connections back to); a server in front should give its
	// http.Server the same ReadHeaderTimeout. If zero,
	// DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// BodyTimeout bounds reading an invocation's body, on either path; a
	// client that takes longer gets its connection closed (408 when the
	// gateway can still answer). If zero, DefaultBodyTimeout.
	BodyTimeout time.Duration
	// WriteTimeout bounds each write of an answer to the client: a client
	// that does not read for that long loses its connection. A whole
	// answer is not bounded, so streams last. If zero,
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// InstanceWait is how long an invocation waits for an instance when
	// its endpoint (or the variant it names) has none that takes requests:
	// while the instances of a restarted Kiln or of a new endpoint start,
	// or while every instance restarts after crashing. It then gets a 503.
	// If zero, DefaultInstanceWait; if negative, there is no wait.
	InstanceWait time.Duration
	// Fallback serves what is not an invocation but arrives on a
	// connection the Gateway took over (see NetHTTPOnly): the Gateway
	// hands such a connection, with the request unread, to an http.Server
	// of its own with this handler. A server that mounts the Gateway in a
	// mux passes the mux. If nil, the Gateway answers them itself, as it
	// answers any request outside /endpoints/{name}/invocations.
	Fallback http.Handler
	// NetHTTPOnly keeps every request on net/http's server and on
	// Transport. Otherwise the Gateway takes the HTTP/1.1 connection of an
	// invocation over from net/http, serves its invocations itself and
	// sends them to models over connections of its own, which costs a
	// fraction of net/http's time per request; Transport is then used
	// only for requests that stay on net/http (HTTP/2, or a
	// ResponseWriter that cannot be hijacked).
	NetHTTPOnly bool
	// Authorize, if set, checks every request before the Gateway looks at
	// it, on net/http and on the connections it took over alike; the body
	// may be read, and must then be put back. A non-nil Refusal is sent
	// as the runtime API's JSON error and the request goes no further.
	Authorize func(r *http.Request) *Refusal
}

// Refusal is Authorize's answer to a request it turns away.
type Refusal struct {
	Status  int    // the HTTP status, such as 403
	Code    string // the error's __type and X-Amzn-ErrorType
	Message string
}

// Gateway is the data plane: it serves POST /endpoints/{name}/invocations
// and /invocations-response-stream, and proxies each request to an instance
// chosen from its routing table. It is safe for concurrent use.
type Gateway struct {
	clock        clock.Clock
	log          *slog.Logger
	region       string
	account      string
	modelTimeout time.Duration
	idleTimeout  time.Duration
	instanceWait time.Duration
	// headerTimeout and bodyTimeout bound the waits for a client's
	// request head and body.
	headerTimeout, bodyTimeout, writeTimeout time.Duration
	maxBody                                  int64
	rand                                     func() uint64
	transport                                http.RoundTripper
	ownTransport                             *http.Transport
	// freshTransport opens a new connection for every request: for the
	// one resend of a request whose kept-alive connection had been closed.
	freshTransport *http.Transport
	fast           bool
	authorize      func(*http.Request) *Refusal
	dialer         *net.Dialer

	table atomic.Pointer[Table]
	// closed is closed by Close; it ends the waits for an instance.
	closed     chan struct{}
	closedOnce sync.Once
	waiting    atomic.Int64 // invocations waiting for an instance

	// connsMu guards the connections taken over from net/http.
	connsMu sync.Mutex
	conns   map[*fastConn]struct{}
	closing bool
	// connsGone is closed when the gateway is closing and the last
	// connection it took over has closed.
	connsGone chan struct{}

	// The server connections are handed back to; started on first use.
	fallback     http.Handler
	fallbackOnce sync.Once
	fallbackLn   *chanListener
	fallbackSrv  *http.Server
	fallbackWG   sync.WaitGroup

	// mu serialises Update and Drain and guards what follows.
	mu        sync.Mutex
	routes    []EndpointRoute
	instances map[string]*instance
	// retired holds instances that left the table while requests were in
	// flight on them, so that Drain and Inflight still see those requests.
	retired []*instance
}

// New returns a Gateway with an empty routing table.
func New(cfg Config) *Gateway {
	g := &Gateway{
		clock:        cfg.Clock,
		log:          cfg.Logger,
		region:       cfg.Region,
		account:      cfg.Account,
		modelTimeout: cfg.ModelTimeout,
		idleTimeout:  cfg.IdleTimeout,
		instanceWait: cfg.InstanceWait,
		maxBody:      cfg.MaxBody,
		rand:         cfg.Rand,
		transport:    cfg.Transport,
		fast:         !cfg.NetHTTPOnly,
		authorize:    cfg.Authorize,
		fallback:     cfg.Fallback,
		conns:        map[*fastConn]struct{}{},
		instances:    map[string]*instance{},
		closed:       make(chan struct{}),
	}
	if g.fallback == nil {
		g.fallback = g
	}
	if g.clock == nil {
		g.clock = clock.Real()
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.account == "" {
		g.account = DefaultAccount
	}
	if g.modelTimeout <= 0 {
		g.modelTimeout = DefaultModelTimeout
	}
	if g.idleTimeout <= 0 {
		g.idleTimeout = DefaultIdleTimeout
	}
	g.headerTimeout, g.bodyTimeout, g.writeTimeout = cfg.HeaderTimeout, cfg.BodyTimeout, cfg.WriteTimeout
	if g.writeTimeout <= 0 {
		g.writeTimeout = DefaultWriteTimeout
	}
	if g.headerTimeout <= 0 {
		g.headerTimeout = DefaultHeaderTimeout
	}
	if g.bodyTimeout <= 0 {
		g.bodyTimeout = DefaultBodyTimeout
	}
	if g.instanceWait == 0 {
		g.instanceWait = DefaultInstanceWait
	}
	if g.maxBody <= 0 {
		g.maxBody = DefaultMaxBody
	}
	if g.rand == nil {
		g.rand = rand.Uint64
	}
	dial := cfg.DialTimeout
	if dial <= 0 {
		dial = DefaultDialTimeout
	}
	g.dialer = &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	if g.transport == nil {
		g.ownTransport = newTransport(dial)
		g.transport = g.ownTransport
	}
	g.freshTransport = newTransport(dial)
	g.freshTransport.DisableKeepAlives = true
	g.table.Store(buildTable(nil, nil))
	return g
}

// newTransport returns a transport for many concurrent requests to a few
// model instances on a trusted network: HTTP/1.1 with plenty of idle
// keep-alive connections per instance (a closed connection costs a new TCP
// handshake on the request path), no proxy from the environment, and no
// compression, since the model's body is passed through as it is.
func newTransport(dialTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:               nil,
		DialContext:         d.DialContext,
		MaxIdleConns:        0, // no overall limit
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     32 << 10,
		ReadBufferSize:      32 << 10,
	}
}

// Shutdown closes the Gateway as Close does, then waits until the client
// connections it took over have answered their request in progress and
// closed, or until ctx ends. http.Server.Shutdown does not wait for them:
// they were hijacked.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.Close()
	select {
	case <-g.connsGone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway: requests still in progress: %w", ctx.Err())
	}
}

// Close closes the idle connections to models, and the client connections
// the Gateway took over: idle ones at once, busy ones once their request is
// answered. Invocations waiting for an instance get their 503 at once.
// Call it once the http.Server that serves the Gateway has begun to shut
// down: a connection the Gateway would take over from then on stays with
// net/http.
func (g *Gateway) Close() error {
	g.closedOnce.Do(func() { close(g.closed) })
	g.connsMu.Lock()
	if !g.closing {
		g.closing = true
		g.connsGone = make(chan struct{})
		if len(g.conns) == 0 {
			close(g.connsGone)
		}
	}
	for c := range g.conns {
		if !c.busy {
			c.conn.Close()
		}
	}
	g.connsMu.Unlock()
	if g.ownTransport != nil {
		g.ownTransport.CloseIdleConnections()
	}
	g.fallbackOnce.Do(func() {}) // no fallback server starts from now on
	if g.fallbackSrv != nil {
		g.fallbackSrv.Close()
		g.fallbackWG.Wait()
	}
	g.mu.Lock()
	for _, in := range g.instances {
		in.closeIdle()
	}
	for _, in := range g.retired {
		in.closeIdle()
	}
	g.mu.Unlock()
	return nil
}

func slogLogger(l *slog.Logger) *log.Logger { return slog.NewLogLogger(l.Handler(), slog.LevelWarn) }

// Table returns the routing table in use now.
func (g *Gateway) Table() *Table { return g.table.Load() }

// Update builds a routing table from routes and swaps it in atomically.
// Requests already routed finish where they are; instances no longer listed
// get no new requests once Update returns. Routes that do not validate are
// skipped and logged.
func (g *Gateway) Update(routes []EndpointRoute) {
	valid := make([]EndpointRoute, 0, len(routes))
	for _, r := range routes {
		if err := r.Validate(); err != nil {
			g.log.Error("gateway: routing update skips an endpoint", "endpoint", r.Name, "err", err)
			continue
		}
		valid = append(valid, r)
	}
	valid = cloneRoutes(valid)

	g.mu.Lock()
	defer g.mu.Unlock()
	g.routes = valid
	next := make(map[string]*instance, len(g.instances))
	var gone []*instance
	t := buildTable(valid, func(r InstanceRoute) *instance {
		in := next[r.ID]
		if in == nil {
			in = g.instances[r.ID]
			if in != nil && in.addr != r.Addr {
				// Same ID, new address: a different process now.
				gone = append(gone, in)
				in = nil
			}
			if in == nil {
				in = newInstance(r)
			}
			next[r.ID] = in
		} else if in.addr != r.Addr {
			g.log.Error("gateway: instance listed twice with different addresses; using the first",
				"instance", r.ID, "addr", in.addr, "ignored", r.Addr)
		}
		if in.draining {
			return nil
		}
		return in
	})
	for id, in := range g.instances {
		if next[id] == nil {
			gone = append(gone, in)
		}
	}
	g.swapTable(t)
	g.instances = next
	// Close the departed instances only after the new table is visible, so
	// a request that backs out of one picks again from a table without it.
	for _, in := range gone {
		in.closed.Store(true)
		in.closeIdle()
		g.retired = append(g.retired, in)
	}
	g.pruneRetired()
}

// Waiting returns how many invocations wait for an instance now.
func (g *Gateway) Waiting() int { return int(g.waiting.Load()) }

// swapTable makes t the routing table and wakes the requests waiting for
// an instance; call with g.mu held.
func (g *Gateway) swapTable(t *Table) {
	close(g.table.Swap(t).replaced)
}

// pruneRetired forgets retired instances with nothing in flight. They are
// closed, so a request that still reaches one backs out at once.
func (g *Gateway) pruneRetired() {
	keep := g.retired[:0]
	for _, in := range g.retired {
		if in.inflight.Load() > 0 {
			keep = append(keep, in)
		}
	}
	clear(g.retired[len(keep):])
	g.retired = keep
}

// Drain stops routing new requests to the instance and waits until the
// requests in flight on it have finished, or ctx ends. An instance that is
// draining stays out of the table until Update no longer lists it; if it is
// listed again after that, it is a new instance. Draining an unknown
// instance returns at once.
func (g *Gateway) Drain(ctx context.Context, instanceID string) error {
	g.mu.Lock()
	var wait []*instance
	if in := g.instances[instanceID]; in != nil {
		if !in.draining {
			in.draining = true
			t := buildTable(g.routes, func(r InstanceRoute) *instance {
				in := g.instances[r.ID]
				if in == nil || in.draining {
					return nil
				}
				return in
			})
			g.swapTable(t)
			in.closed.Store(true)
			in.closeIdle()
		}
		wait = append(wait, in)
	}
	for _, in := range g.retired {
		if in.id == instanceID {
			wait = append(wait, in)
		}
	}
	g.pruneRetired()
	g.mu.Unlock()

	for _, in := range wait {
		if err := in.wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Inflight returns the number of requests in flight on the instance.
func (g *Gateway) Inflight(instanceID string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	if in := g.instances[instanceID]; in != nil {
		n += in.inflight.Load()
	}
	for _, in := range g.retired {
		if in.id == instanceID {
			n += in.inflight.Load()
		}
	}
	return int(n)
}

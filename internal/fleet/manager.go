package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
)

// Defaults for Config's zero values.
const (
	DefaultPingInterval      = time.Second
	DefaultPingTimeout       = 2 * time.Second // REFERENCE.md §4
	DefaultStartupTimeout    = 240 * time.Second
	DefaultStopTimeout       = 30 * time.Second // REFERENCE.md §4
	DefaultDrainTimeout      = 60 * time.Second
	DefaultRestartBackoff    = time.Second
	DefaultMaxRestartBackoff = 30 * time.Second
)

// backoffResetAfter is how long an instance must stay healthy for the next
// failure of its slot to be retried after RestartBackoff again, instead of
// after twice the previous wait.
const backoffResetAfter = time.Minute

// Spec is one fleet the manager should run: the fleet as the endpoint record
// holds it, and the endpoint it belongs to.
type Spec struct {
	Endpoint string
	kiln.Fleet
}

// Drainer stops sending requests to an instance. The gateway implements it.
type Drainer interface {
	// Drain stops routing new requests to the instance and returns when the
	// requests in flight on it have finished, or when ctx ends.
	Drain(ctx context.Context, instanceID string) error
}

// Config configures a Manager. Only LogDir is required.
type Config struct {
	// Clock drives health checks, timeouts and backoff. If nil, the wall
	// clock is used.
	Clock clock.Clock
	// Logger receives instance starts, stops and failures. If nil, nothing
	// is logged.
	Logger *slog.Logger

	// LogDir holds the instances' output: LogDir/<endpoint>/<instanceID>.log,
	// stdout and stderr together, with Kiln's own notes about the instance
	// (start, exit, stop) on lines that begin with "[kiln]". Required.
	LogDir string
	// RunDir holds one PID file per running instance, so that the next run
	// can kill what this one leaves behind if it is killed. If empty, a
	// directory named "run" beside LogDir is used.
	RunDir string

	// PingInterval is how often each instance's GET /ping is called. If
	// zero, DefaultPingInterval.
	PingInterval time.Duration
	// PingTimeout bounds one ping. If zero, DefaultPingTimeout.
	PingTimeout time.Duration
	// StartupTimeout bounds how long a new instance may take to pass its
	// first ping. A fleet's Container.ContainerStartupHealthCheckTimeoutInSeconds
	// overrides it. If zero, DefaultStartupTimeout.
	StartupTimeout time.Duration
	// StopTimeout is how long an instance has to exit after SIGTERM before
	// it gets SIGKILL. If zero, DefaultStopTimeout.
	StopTimeout time.Duration
	// DrainTimeout bounds Drainer.Drain. If zero, DefaultDrainTimeout.
	DrainTimeout time.Duration
	// RestartBackoff is the wait before the first restart of a failed
	// instance; each further failure doubles it, up to MaxRestartBackoff.
	// An instance that stays healthy for a minute starts over at
	// RestartBackoff. If zero, DefaultRestartBackoff.
	RestartBackoff time.Duration
	// MaxRestartBackoff caps the wait. If zero, DefaultMaxRestartBackoff.
	MaxRestartBackoff time.Duration

	// AllowedCommands, if not empty, lists the only command lines an
	// instance may run: executables, or command line patterns, as
	// CommandPolicy describes. The first word of a model's Image is
	// resolved as exec.LookPath does with Kiln's own PATH (never the
	// model's) and must name the same path as an entry's first word,
	// resolved the same way. Paths are compared after resolving symbolic
	// links in their directories but not the files themselves, so that
	// allowing one name of a multi-call binary (busybox) does not allow its
	// other names. Whatever the list, Kiln's own binary runs only as
	// `kiln demo-model`. A command that is not allowed fails its launch with
	// a reason that says so.
	AllowedCommands []string
	// KilnBinary is the file an Image's first word runs when it is the
	// bare word "kiln" (so that `kiln demo-model`, as the docs write it,
	// runs the demo model of this Kiln however it was started, and a kiln
	// elsewhere on PATH is never picked instead); allow-list entries that
	// say "kiln" name it too. It should be this Kiln's own binary, or a
	// copy of it the instance user can run. If empty, "kiln" is looked up
	// in PATH like any other name.
	KilnBinary string
	// InstanceUser, if not empty, is the user (a name or a numeric ID)
	// instances run as, with its primary group and supplementary groups,
	// its home directory as HOME, and its name as USER and LOGNAME. Kiln
	// must then run as root. If empty, instances run as Kiln's own user.
	InstanceUser string

	// Drainer is asked to drain each routable instance before it is
	// stopped. If nil, instances are stopped without draining.
	Drainer Drainer
	// OnChange is called whenever an instance becomes routable or stops
	// being routable, or anything else that Instances or FleetStatus report
	// changes. Calls come from one goroutine, one at a time and never under
	// the manager's lock; changes that happen while a call runs are
	// reported by one more call. If nil, nothing is called.
	OnChange func()
}

// Validate reports a configuration that New cannot use.
func (c *Config) Validate() error {
	if c.LogDir == "" {
		return errors.New("fleet: Config.LogDir is required")
	}
	for name, d := range map[string]time.Duration{
		"PingInterval": c.PingInterval, "PingTimeout": c.PingTimeout,
		"StartupTimeout": c.StartupTimeout, "StopTimeout": c.StopTimeout,
		"DrainTimeout": c.DrainTimeout, "RestartBackoff": c.RestartBackoff,
		"MaxRestartBackoff": c.MaxRestartBackoff,
	} {
		if d < 0 {
			return fmt.Errorf("fleet: Config.%s is negative (%s)", name, d)
		}
	}
	for i, a := range c.AllowedCommands {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("fleet: Config.AllowedCommands[%d] is empty", i)
		}
	}
	if _, err := ParseCommandPolicy(c.AllowedCommands); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	if _, err := lookupInstanceUser(c.InstanceUser); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	return nil
}

// Manager runs the instances of the fleets it is given. Its methods are safe
// for concurrent use.
type Manager struct {
	cfg       Config
	policy    *CommandPolicy
	user      *instanceUser // nil: instances run as Kiln's own user
	clock     clock.Clock
	log       *slog.Logger
	transport *http.Transport
	client    *http.Client

	started atomic.Bool
	syncc   chan struct{}     // Sync's wake-up for Run, buffered 1
	notifyc chan struct{}     // pending OnChange call, buffered 1
	spawnc  chan spawnRequest // to the spawner goroutine
	workers sync.WaitGroup    // supervisors and their helpers
	baseCtx context.Context   // Run's context without its cancellation, for drains

	mu      sync.Mutex
	closing bool               // Run is stopping everything
	desired map[fleetKey]Spec  // as last given to Sync
	active  map[slotKey]*slot  // slots that should run
	slots   map[*slot]struct{} // every slot with a supervisor, active or retiring
	inc     map[string]int     // highest incarnation used per instance ID prefix
	ports   map[int]bool       // ports handed to live instances
}

type fleetKey struct{ endpoint, fleet string }

type slotKey struct {
	endpoint, fleet string
	ordinal         int
}

// New checks cfg, kills any instance processes a previous run left behind
// (as recorded under RunDir), and returns a Manager that does nothing until
// Run.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&cfg.PingInterval, DefaultPingInterval)
	setDefault(&cfg.PingTimeout, DefaultPingTimeout)
	setDefault(&cfg.StartupTimeout, DefaultStartupTimeout)
	setDefault(&cfg.StopTimeout, DefaultStopTimeout)
	setDefault(&cfg.DrainTimeout, DefaultDrainTimeout)
	setDefault(&cfg.RestartBackoff, DefaultRestartBackoff)
	setDefault(&cfg.MaxRestartBackoff, DefaultMaxRestartBackoff)
	cfg.MaxRestartBackoff = max(cfg.MaxRestartBackoff, cfg.RestartBackoff)
	cfg.LogDir = filepath.Clean(cfg.LogDir)
	if cfg.RunDir == "" {
		cfg.RunDir = filepath.Join(filepath.Dir(cfg.LogDir), "run")
	}
	cfg.AllowedCommands = slices.Clone(cfg.AllowedCommands)
	policy, err := ParseCommandPolicy(cfg.AllowedCommands)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if cfg.KilnBinary != "" {
		if policy.self, err = filepath.Abs(cfg.KilnBinary); err != nil {
			return nil, fmt.Errorf("fleet: Config.KilnBinary: %w", err)
		}
	}
	user, err := lookupInstanceUser(cfg.InstanceUser)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	// Instances' output may hold whatever a model prints (its settings,
	// its inputs), and PID files name processes to kill: neither is for
	// other users, the instances' own user included.
	for _, dir := range []string{cfg.LogDir, cfg.RunDir} {
		if err := privateDir(dir); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
	}

	m := &Manager{
		cfg:     cfg,
		policy:  policy,
		user:    user,
		clock:   cfg.Clock,
		log:     cfg.Logger,
		syncc:   make(chan struct{}, 1),
		notifyc: make(chan struct{}, 1),
		spawnc:  make(chan spawnRequest),
		desired: map[fleetKey]Spec{},
		active:  map[slotKey]*slot{},
		slots:   map[*slot]struct{}{},
		inc:     map[string]int{},
		ports:   map[int]bool{},
	}
	// Instances listen on loopback only: no proxy from the environment may
	// come between Kiln and them. One kept-alive connection per instance
	// serves its pings; a new connection per ping would leave thousands of
	// sockets in TIME_WAIT on a busy host, competing with pickPort.
	m.transport = &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        0, // no limit
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	m.client = &http.Client{
		Transport: m.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	for _, w := range policy.Warnings() {
		m.log.Warn(w)
	}
	m.killLeftovers()
	return m, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Run starts, watches and replaces instances until ctx ends; then it stops
// every instance (drain, SIGTERM, SIGKILL) and returns nil once all their
// processes are gone. Every goroutine the manager uses is started by Run and
// ended before it returns. Run may be called once.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("fleet: Manager.Run called more than once")
	}
	m.baseCtx = context.WithoutCancel(ctx)

	var helpers sync.WaitGroup
	notifierDone := make(chan struct{})
	helpers.Go(m.spawner)
	helpers.Go(func() { m.notifier(notifierDone) })

	m.reconcile()
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-m.syncc:
			m.reconcile()
		}
	}

	m.mu.Lock()
	m.closing = true
	for s := range m.slots {
		s.retire()
	}
	clear(m.active)
	m.mu.Unlock()
	m.workers.Wait()

	close(m.spawnc)
	close(notifierDone)
	helpers.Wait()
	m.transport.CloseIdleConnections()
	return nil
}

// Sync sets the fleets that should run; fleets not listed are stopped. It
// returns at once (Run does the work) and may be called as often as
// wished: a call that changes nothing costs a copy of specs. A fleet is
// identified by Endpoint and ID; its instances are numbered 0 to
// InstanceCount-1, and those numbered InstanceCount or more are stopped.
func (m *Manager) Sync(specs []Spec) {
	desired := make(map[fleetKey]Spec, len(specs))
	for _, s := range specs {
		s.Container.Environment = maps.Clone(s.Container.Environment)
		desired[fleetKey{s.Endpoint, s.ID}] = s
	}
	m.mu.Lock()
	m.desired = desired
	m.mu.Unlock()
	select {
	case m.syncc <- struct{}{}:
	default:
	}
}

// reconcile starts a supervisor for every wanted slot that has none and
// retires the slots no longer wanted.
func (m *Manager) reconcile() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return
	}
	changed := false
	for k, s := range m.active {
		spec, ok := m.desired[fleetKey{k.endpoint, k.fleet}]
		if !ok || k.ordinal >= spec.InstanceCount {
			s.retire()
			delete(m.active, k)
			changed = true
			continue
		}
		s.spec = spec
	}
	for fk, spec := range m.desired {
		for i := range spec.InstanceCount {
			k := slotKey{fk.endpoint, fk.fleet, i}
			if m.active[k] != nil {
				continue
			}
			s := &slot{key: k, spec: spec, stopc: make(chan struct{})}
			m.active[k] = s
			m.slots[s] = struct{}{}
			m.workers.Go(func() { m.supervise(s) })
			changed = true
		}
	}
	if changed {
		m.changed()
	}
}

// forget drops a slot whose supervisor has finished.
func (m *Manager) forget(s *slot) {
	m.mu.Lock()
	delete(m.slots, s)
	if m.active[s.key] == s {
		delete(m.active, s.key)
	}
	m.mu.Unlock()
	m.changed()
}

// changed schedules a call of OnChange.
func (m *Manager) changed() {
	select {
	case m.notifyc <- struct{}{}:
	default:
	}
}

// notifier calls OnChange for each batch of changes until done is closed,
// then once more if a change is pending.
func (m *Manager) notifier(done <-chan struct{}) {
	call := func() {
		if m.cfg.OnChange != nil {
			m.cfg.OnChange()
		}
	}
	for {
		select {
		case <-m.notifyc:
			call()
		case <-done:
			select {
			case <-m.notifyc:
				call()
			default:
			}
			return
		}
	}
}

// Instances returns a snapshot of every instance the manager knows: running,
// starting, stopping, and the last incarnation of each slot that failed and
// waits to be restarted. They are ordered by endpoint, fleet, ordinal.
func (m *Manager) Instances() []Instance {
	m.mu.Lock()
	out := make([]Instance, 0, len(m.slots))
	for s := range m.slots {
		if s.inst.ID != "" {
			out = append(out, s.inst)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Instance) int {
		return cmpInstances(a, b)
	})
	return out
}

func cmpInstances(a, b Instance) int {
	if c := strings.Compare(a.Endpoint, b.Endpoint); c != 0 {
		return c
	}
	if c := strings.Compare(a.FleetID, b.FleetID); c != 0 {
		return c
	}
	if a.Ordinal != b.Ordinal {
		return a.Ordinal - b.Ordinal
	}
	return strings.Compare(a.ID, b.ID)
}

// FleetStatus summarises the instances of one fleet as last synced.
type FleetStatus struct {
	// Healthy counts routable instances.
	Healthy int
	// Starting counts instances launched and not yet healthy.
	Starting int
	// Failed counts instances whose last incarnation failed (did not
	// launch, crashed, or failed a ping) and that wait to be restarted.
	Failed int
	// LaunchFailed is set when an instance of the fleet failed its launch
	// (could not start, exited, or was not healthy within the startup
	// window) and no later incarnation of it has been healthy yet. The
	// manager keeps retrying; the controller decides whether to give up.
	LaunchFailed bool
	// Reason says why, for the lowest-numbered such instance, e.g.
	// "Instance 2 of fleet f3 (variant AllTraffic) did not pass its health
	// check within 240 seconds: GET /ping returned 503 Service Unavailable".
	Reason string
}

// FleetStatus reports the instances of a fleet that should run (instances
// being stopped are not counted). An unknown fleet has a zero status.
func (m *Manager) FleetStatus(endpoint, fleetID string) FleetStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st FleetStatus
	reasonOrdinal := -1
	for k, s := range m.active {
		if k.endpoint != endpoint || k.fleet != fleetID {
			continue
		}
		switch {
		case s.inst.Routable:
			st.Healthy++
		case s.inst.State == StateStarting:
			st.Starting++
		case s.inst.State == StateFailed:
			st.Failed++
		}
		if s.launchFailed && (reasonOrdinal < 0 || k.ordinal < reasonOrdinal) {
			st.LaunchFailed = true
			st.Reason = s.reason
			reasonOrdinal = k.ordinal
		}
	}
	return st
}

// LogFiles lists the log files of an endpoint's instances, present and
// past, in name order.
func (m *Manager) LogFiles(endpoint string) []string {
	if !safeName(endpoint) {
		return nil
	}
	dir := filepath.Join(m.cfg.LogDir, endpoint)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".log") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// safeName reports whether a name can be used as one path element.
func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`+"\x00")
}

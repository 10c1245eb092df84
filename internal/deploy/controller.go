package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
)

// Config configures a Controller.
type Config struct {
	// Clock tells the time and runs the timers; nil means the wall clock.
	Clock clock.Clock
	// Logger receives transitions and failures; nil discards them.
	Logger *slog.Logger
	// Store, Fleets and Alarms are required.
	Store  Store
	Fleets Fleets
	Alarms Alarms
	// Judges reports what judge alarms say beyond their states (waiting
	// for evidence, early promotion). If nil, judge alarms count by their
	// states only.
	Judges Judges
	// Requests counts what the new fleets answered during a bake, which
	// MinRequestsPerBake waits for and a bake without any reports. If nil,
	// nothing is counted: bakes neither wait for evidence nor report its
	// absence.
	Requests Requests
	// Interval is how often every endpoint with a deployment is looked at
	// even without news, which bounds how late a missed notification is
	// seen; 0 means one second.
	Interval time.Duration
}

// Controller drives the deployments of every endpoint: it reads a record,
// calls Next with what the fleets and alarms report, writes the result with
// compare-and-swap (the write is the action: the fleet manager and the
// gateway follow the record), appends the history, and comes back when Next
// says or when notified.
//
// Everything runs in Run's goroutine; Notify may be called from any
// goroutine and never blocks.
type Controller struct {
	cfg Config
	clk clock.Clock
	log *slog.Logger

	signal chan struct{}

	mu      sync.Mutex
	pending map[string]bool
	all     bool

	// Owned by Run's goroutine.
	active map[string]bool      // endpoints with a deployment, as last read
	wakes  map[string]time.Time // when to look at an endpoint again
	failed map[string]string    // the error last logged for an endpoint
}

// maxRounds bounds the transitions made for one endpoint in a row before
// others get their turn.
const maxRounds = 64

// NewController returns a controller; Run starts it.
func NewController(cfg Config) *Controller {
	c := &Controller{
		cfg:     cfg,
		clk:     cfg.Clock,
		log:     cfg.Logger,
		signal:  make(chan struct{}, 1),
		pending: map[string]bool{},
		active:  map[string]bool{},
		wakes:   map[string]time.Time{},
		failed:  map[string]string{},
	}
	if c.clk == nil {
		c.clk = clock.Real()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.cfg.Interval <= 0 {
		c.cfg.Interval = time.Second
	}
	return c
}

// Notify asks the controller to look at an endpoint now: its record, one of
// its fleets or one of its alarms changed. "" means every endpoint with a
// deployment, for changes (an alarm's state) whose endpoints the caller
// does not know.
func (c *Controller) Notify(endpoint string) {
	c.mu.Lock()
	if endpoint == "" {
		c.all = true
	} else {
		c.pending[endpoint] = true
	}
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// Run drives deployments until ctx ends; call it once. It looks at every
// endpoint when it starts, so deployments a previous controller left
// half-way carry on.
func (c *Controller) Run(ctx context.Context) error {
	if c.cfg.Store == nil || c.cfg.Fleets == nil || c.cfg.Alarms == nil {
		return errors.New("deployment controller: Config.Store, Fleets and Alarms are required")
	}
	ticker := c.clk.NewTicker(c.cfg.Interval)
	defer ticker.Stop()
	timer := c.clk.NewTimer(c.cfg.Interval)
	defer timer.Stop()

	c.resync(ctx)
	for {
		c.arm(timer)
		select {
		case <-ctx.Done():
			return nil
		case <-c.signal:
			c.notified(ctx)
		case <-ticker.Chan():
			c.resync(ctx)
		case <-timer.Chan():
			c.due(ctx)
		}
	}
}

// arm sets the timer to the earliest wake-up.
func (c *Controller) arm(timer clock.Timer) {
	var next time.Time
	for _, t := range c.wakes {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	timer.Stop()
	if !next.IsZero() {
		timer.Reset(max(next.Sub(c.clk.Now()), 0))
	}
}

// notified looks at the endpoints Notify named.
func (c *Controller) notified(ctx context.Context) {
	c.mu.Lock()
	names, all := c.pending, c.all
	c.pending, c.all = map[string]bool{}, false
	c.mu.Unlock()
	if all {
		for name := range c.active {
			names[name] = true
		}
	}
	for name := range names {
		if ctx.Err() != nil {
			return
		}
		c.reconcile(ctx, name)
	}
}

// due looks at the endpoints whose wake-up time has come.
func (c *Controller) due(ctx context.Context) {
	now := c.clk.Now()
	var names []string
	for name, t := range c.wakes {
		if !t.After(now) {
			names = append(names, name)
			delete(c.wakes, name)
		}
	}
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		c.reconcile(ctx, name)
	}
}

// resync looks at every endpoint with a deployment.
func (c *Controller) resync(ctx context.Context) {
	eps, err := c.cfg.Store.ListEndpoints(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("deployment controller: list endpoints", "err", err)
		}
		return
	}
	seen := map[string]bool{}
	for _, ep := range eps {
		seen[ep.EndpointName] = true
		if ep.Deployment != nil && ctx.Err() == nil {
			c.reconcile(ctx, ep.EndpointName)
		}
	}
	for name := range c.active {
		if !seen[name] {
			c.forget(name)
		}
	}
	for _, ep := range eps {
		if ep.Deployment == nil && c.active[ep.EndpointName] {
			c.forget(ep.EndpointName)
		}
	}
}

func (c *Controller) forget(name string) {
	delete(c.active, name)
	delete(c.wakes, name)
	delete(c.failed, name)
}

// reconcile moves one endpoint on as far as it can go now. A record that
// is invalid, or whose handling panics, is set aside with one log line: the
// other endpoints carry on, and the record is looked at again when it
// changes.
func (c *Controller) reconcile(ctx context.Context, name string) {
	defer func() {
		if v := recover(); v != nil {
			msg := fmt.Sprintf("panic: %v", v)
			if c.failed[name] != msg {
				c.failed[name] = msg
				c.log.Error("deployment controller: endpoint set aside", "endpoint", name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
			delete(c.wakes, name)
		}
	}()
	c.reconcileRounds(ctx, name)
}

func (c *Controller) reconcileRounds(ctx context.Context, name string) {
	for range maxRounds {
		ep, rev, err := c.cfg.Store.GetEndpoint(ctx, name)
		if err != nil {
			if kiln.ErrorCode(err) == kiln.ENOTFOUND {
				c.forget(name)
			} else if ctx.Err() == nil {
				c.log.Warn("deployment controller: read endpoint", "endpoint", name, "err", err)
			}
			return
		}
		if ep.Deployment == nil {
			c.forget(name)
			return
		}
		c.active[name] = true
		now := c.clk.Now()
		if err := ep.ValidateStored(); err != nil {
			if msg := err.Error(); c.failed[name] != msg {
				c.failed[name] = msg
				c.log.Error("deployment controller: invalid endpoint record set aside", "endpoint", name, "err", err)
			}
			delete(c.wakes, name)
			return
		}
		next, events, wake, changed, err := advance(ep, c.observe(ep), now)
		if err != nil {
			// An illegal record does not heal by itself: say so once, and
			// look again when it changes.
			if msg := err.Error(); c.failed[name] != msg {
				c.failed[name] = msg
				c.log.Error("deployment controller: cannot advance deployment", "endpoint", name, "deployment", ep.Deployment.ID, "err", err)
			}
			delete(c.wakes, name)
			return
		}
		delete(c.failed, name)
		if !changed {
			c.schedule(name, wake)
			return
		}
		if _, err := c.cfg.Store.PutEndpoint(ctx, next, rev); err != nil {
			if errors.Is(err, ErrConflict) {
				continue // someone wrote in between: read again
			}
			if ctx.Err() == nil {
				c.log.Warn("deployment controller: write endpoint", "endpoint", name, "err", err)
			}
			c.schedule(name, now.Add(c.cfg.Interval))
			return
		}
		for _, ev := range events {
			c.log.Info("deployment", "endpoint", name, "deployment", ev.DeploymentID, "phase", ev.Phase,
				"step", ev.Step, "green_share", ev.GreenShare, "msg", ev.Message)
		}
		if len(events) > 0 {
			if err := c.cfg.Store.AppendHistory(ctx, name, events); err != nil && ctx.Err() == nil {
				c.log.Warn("deployment controller: append history", "endpoint", name, "err", err)
			}
		}
		if next.Deployment == nil {
			c.forget(name)
			return
		}
		if wake.IsZero() || wake.After(now) {
			c.schedule(name, wake)
			return
		}
	}
	// Still moving: come back after the others had their turn.
	c.schedule(name, c.clk.Now())
}

func (c *Controller) schedule(name string, t time.Time) {
	if t.IsZero() {
		delete(c.wakes, name)
		return
	}
	c.wakes[name] = t
}

// observe gathers what Next needs beside the record.
func (c *Controller) observe(ep kiln.Endpoint) Observation {
	obs := Observation{Fleets: make(map[string]FleetStatus, len(ep.Fleets)), Alarms: map[string]kiln.AlarmState{}}
	for _, f := range ep.Fleets {
		obs.Fleets[f.ID] = c.cfg.Fleets.FleetStatus(ep.EndpointName, f.ID)
	}
	if ep.Deployment != nil {
		for _, name := range ep.Deployment.DeploymentConfig.AlarmNames() {
			if st, ok := c.cfg.Alarms.State(name); ok {
				obs.Alarms[name] = st
			}
			if c.cfg.Judges != nil {
				if v, ok := c.cfg.Judges.Verdict(name); ok {
					if obs.Judges == nil {
						obs.Judges = map[string]JudgeVerdict{}
					}
					obs.Judges[name] = v
				}
			}
		}
	}
	if d := ep.Deployment; d != nil && d.Phase == kiln.PhaseBaking && c.cfg.Requests != nil {
		obs.Answered = map[string]int{}
		for _, f := range ep.Fleets {
			if contains(d.Green, f.ID) {
				obs.Answered[f.ID] = c.cfg.Requests.Answered(ep.EndpointName, f, d.PhaseStartTime)
			}
		}
	}
	return obs
}

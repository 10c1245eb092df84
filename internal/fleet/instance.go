package fleet

import (
	"context"
	"fmt"
	"time"
)

// Instance states.
const (
	StateStarting  = "Starting"  // launched, not healthy yet
	StateHealthy   = "Healthy"   // passed its health check; routable
	StateUnhealthy = "Unhealthy" // failed a ping after being healthy; being killed and replaced
	StateDraining  = "Draining"  // no longer wanted: being drained, then stopped
	StateStopped   = "Stopped"   // stopped because it was no longer wanted
	StateFailed    = "Failed"    // did not launch, crashed or was unhealthy; waits to be restarted
)

// Instance is one incarnation of one numbered instance of a fleet, as the
// manager last saw it.
type Instance struct {
	// ID is unique and never reused: <endpoint>-<fleet>-<ordinal>-<incarnation>.
	ID       string
	Endpoint string
	FleetID  string
	// Ordinal numbers the instance within its fleet, from 0.
	Ordinal int
	// Addr is host:port on loopback; empty if the process did not start.
	Addr string
	// PID is the process ID; 0 if the process did not start.
	PID int
	// State is one of the State constants.
	State string
	// Routable is set once the instance passed a ping, and cleared as soon
	// as it fails one, exits, or is to be stopped.
	Routable  bool
	StartedAt time.Time
	// Restarts counts the incarnations of this ordinal started before this one.
	Restarts int
	// LastError is the most recent failure of this ordinal, if any.
	LastError string
	// LogPath is the file that receives the process's stdout and stderr.
	LogPath string
}

// slot is one ordinal of one fleet: a supervisor goroutine runs its
// incarnations one after the other until the slot is retired.
type slot struct {
	key   slotKey
	stopc chan struct{} // closed by retire

	// Guarded by Manager.mu.
	spec         Spec
	retired      bool
	inst         Instance // the current or last incarnation
	launches     int
	launchFailed bool   // the last launch failed and no incarnation has been healthy since
	reason       string // why, when launchFailed
}

// retire asks the slot's supervisor to stop its instance and return. Call
// with Manager.mu held.
func (s *slot) retire() {
	if !s.retired {
		s.retired = true
		close(s.stopc)
	}
}

// supervise runs incarnations of a slot until it is retired.
func (m *Manager) supervise(s *slot) {
	defer m.forget(s)
	var backoff time.Duration
	for {
		select {
		case <-s.stopc:
			return
		default:
		}
		m.mu.Lock()
		spec := s.spec
		m.mu.Unlock()

		var healthySince time.Time
		p, err := m.launch(s, spec)
		if err != nil {
			m.failLaunch(s, fmt.Sprintf("%s could not start: %v", describe(s.key, spec), err))
		} else {
			var stopped bool
			if healthySince, stopped = m.watch(s, spec, p); stopped {
				return
			}
		}

		var healthyFor time.Duration
		if !healthySince.IsZero() {
			healthyFor = m.clock.Since(healthySince)
		}
		backoff = nextBackoff(backoff, healthyFor, m.cfg.RestartBackoff, m.cfg.MaxRestartBackoff)
		t := m.clock.NewTimer(backoff)
		select {
		case <-s.stopc:
			t.Stop()
			return
		case <-t.Chan():
		}
	}
}

// nextBackoff is the wait before restarting a slot whose incarnation just
// failed, after waiting prev before it and staying healthy for healthyFor.
func nextBackoff(prev, healthyFor, initial, maxWait time.Duration) time.Duration {
	if prev == 0 || healthyFor >= backoffResetAfter {
		return initial
	}
	return min(2*prev, maxWait)
}

// describe names an instance in failure reasons.
func describe(k slotKey, spec Spec) string {
	return fmt.Sprintf("Instance %d of fleet %s (variant %s)", k.ordinal, k.fleet, spec.VariantName)
}

// watch pings a running incarnation until it is stopped (stopped is true:
// the slot was retired and the process is gone) or fails (the process is
// gone, and the slot records why). healthySince is when it first passed a
// ping; zero if it never did.
func (m *Manager) watch(s *slot, spec Spec, p *proc) (healthySince time.Time, stopped bool) {
	timeout := m.cfg.StartupTimeout
	if t := spec.Container.ContainerStartupHealthCheckTimeoutInSeconds; t > 0 {
		timeout = time.Duration(t) * time.Second
	}
	startup := m.clock.NewTimer(timeout)
	defer startup.Stop()
	startupc := startup.Chan()
	tick := m.clock.NewTicker(m.cfg.PingInterval)
	defer tick.Stop()

	// One ping at a time, in its own goroutine, so that an exit or a stop
	// is seen at once even while a ping waits for its timeout.
	pingCtx, cancelPings := context.WithCancel(context.Background())
	results := make(chan error, 1)
	pinging := false
	ping := func() {
		pinging = true
		m.workers.Go(func() { results <- m.ping(pingCtx, p.addr) })
	}
	defer func() {
		cancelPings()
		if pinging {
			<-results
		}
	}()
	ping()

	var lastErr error
	for {
		select {
		case <-s.stopc:
			m.stopInstance(s, p)
			return healthySince, true

		case <-p.exited:
			status := exitStatus(p.waitErr)
			if healthySince.IsZero() {
				reason := fmt.Sprintf("%s exited before passing its health check: %s", describe(s.key, spec), status)
				if tail := logTail(p.logPath); tail != "" {
					reason += ". Last output: " + tail
				}
				m.failLaunch(s, reason)
			} else {
				m.failInstance(s, "process exited: "+status)
			}
			return healthySince, false

		case <-startupc:
			why := "no answer yet"
			if lastErr != nil {
				why = lastErr.Error()
			}
			reason := fmt.Sprintf("%s did not pass its health check within %s: %s", describe(s.key, spec), seconds(timeout), why)
			m.note(p, "did not pass its health check within %s: %s; killing it", seconds(timeout), why)
			m.kill(p)
			m.failLaunch(s, reason)
			return healthySince, false

		case <-tick.Chan():
			if !pinging {
				ping()
			}

		case err := <-results:
			pinging = false
			if err == nil {
				if healthySince.IsZero() {
					healthySince = m.clock.Now()
					startup.Stop()
					startupc = nil
					m.becameHealthy(s, p)
				}
				continue
			}
			lastErr = err
			if healthySince.IsZero() {
				continue
			}
			// Healthy before, failing now: out of the routing table at
			// once, then replaced. A dying process fails its ping before
			// it can be reaped (its sockets close first, and a process
			// with many threads or much memory takes a while to finish
			// exiting); give it a moment, so that the reason says how it
			// exited rather than "connection refused".
			m.update(s, func(in *Instance) {
				in.State, in.Routable, in.LastError = StateUnhealthy, false, err.Error()
			})
			if m.exitsSoon(p) {
				m.failInstance(s, "process exited: "+exitStatus(p.waitErr))
				return healthySince, false
			}
			m.log.Warn("instance failed its health check; replacing it", "instance", p.id, "error", err)
			m.note(p, "failed its health check (%v); killing it", err)
			m.kill(p)
			m.failInstance(s, "health check failed: "+err.Error())
			return healthySince, false
		}
	}
}

// exitGrace is how long an instance that fails a ping is given to turn out
// to have exited, before it is killed as unhealthy.
const exitGrace = time.Second

// exitsSoon reports whether the process exits (and is reaped) within
// exitGrace.
func (m *Manager) exitsSoon(p *proc) bool {
	if !p.hasExited() {
		t := m.clock.NewTimer(exitGrace)
		defer t.Stop()
		select {
		case <-p.exited:
		case <-t.Chan():
			return false
		}
	}
	<-p.exited
	return true
}

// stopInstance takes a wanted-no-more instance out of routing, drains it,
// then stops its process: SIGTERM, and SIGKILL after StopTimeout.
func (m *Manager) stopInstance(s *slot, p *proc) {
	wasRoutable := m.update(s, func(in *Instance) {
		in.State, in.Routable = StateDraining, false
	})
	if wasRoutable && m.cfg.Drainer != nil {
		ctx, cancel := m.withTimeout(m.baseCtx, m.cfg.DrainTimeout)
		if err := m.cfg.Drainer.Drain(ctx, p.id); err != nil {
			m.log.Warn("draining instance", "instance", p.id, "error", err)
		}
		cancel()
	}
	m.log.Info("stopping instance", "instance", p.id, "pid", p.pid)
	m.terminate(p)
	m.update(s, func(in *Instance) { in.State = StateStopped })
}

// terminate sends SIGTERM to the process group, and SIGKILL if the process
// has not exited after StopTimeout; it returns once the process is gone.
func (m *Manager) terminate(p *proc) {
	select {
	case <-p.exited:
		return
	default:
	}
	m.note(p, "stopping: SIGTERM")
	p.signal(sigTERM)
	t := m.clock.NewTimer(m.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return
	case <-t.Chan():
	}
	m.note(p, "still running %s after SIGTERM: SIGKILL", seconds(m.cfg.StopTimeout))
	m.log.Warn("instance ignored SIGTERM; killing it", "instance", p.id, "pid", p.pid)
	m.kill(p)
}

// kill sends SIGKILL to the process group and waits until the process is gone.
func (m *Manager) kill(p *proc) {
	p.signal(sigKILL)
	<-p.exited
}

// becameHealthy marks an incarnation routable.
func (m *Manager) becameHealthy(s *slot, p *proc) {
	m.mu.Lock()
	s.inst.State, s.inst.Routable = StateHealthy, true
	s.launchFailed, s.reason = false, ""
	m.mu.Unlock()
	m.changed()
	m.log.Info("instance healthy", "instance", p.id, "addr", p.addr)
}

// failLaunch records that an incarnation failed its launch.
func (m *Manager) failLaunch(s *slot, reason string) {
	m.mu.Lock()
	s.inst.State, s.inst.Routable, s.inst.LastError = StateFailed, false, reason
	s.launchFailed, s.reason = true, reason
	id := s.inst.ID
	m.mu.Unlock()
	m.changed()
	m.log.Warn("instance failed to launch", "instance", id, "reason", reason)
}

// failInstance records that a once-healthy incarnation failed.
func (m *Manager) failInstance(s *slot, reason string) {
	var id string
	m.update(s, func(in *Instance) {
		in.State, in.Routable, in.LastError = StateFailed, false, reason
		id = in.ID
	})
	m.log.Warn("instance failed", "instance", id, "reason", reason)
}

// update changes a slot's instance record under the lock, schedules
// OnChange, and reports whether the instance was routable before.
func (m *Manager) update(s *slot, f func(*Instance)) (wasRoutable bool) {
	m.mu.Lock()
	wasRoutable = s.inst.Routable
	f(&s.inst)
	m.mu.Unlock()
	m.changed()
	return wasRoutable
}

// seconds formats a duration as the reasons and logs show it: "240
// seconds", or "500ms" when it is not a whole number of seconds.
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		if d == time.Second {
			return "1 second"
		}
		return fmt.Sprintf("%d seconds", d/time.Second)
	}
	return d.String()
}

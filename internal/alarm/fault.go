package alarm

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/kiln-serve/kiln"
)

// One alarm never stops the others: an alarm whose definition is invalid,
// or whose evaluation panics, is set aside with a fault. It goes to
// INSUFFICIENT_DATA with a StateReason naming the fault, is not evaluated
// again until its definition changes (or Kiln restarts), and every other
// alarm carries on. A stored alarm that once crashed Kiln at every start is
// how this came to be.

// setFault sets or clears the entry's fault, logging a new one.
func (en *entry) setFault(log *slog.Logger, fault *string) {
	if fault != nil {
		log.Warn("alarm not evaluated", "alarm", en.name, "reason", *fault)
	}
	en.fault.Store(fault)
}

// guard runs f, one alarm's evaluation; if f panics, the alarm gets a fault
// and the panic goes no further.
func (e *Engine) guard(ctx context.Context, en *entry, f func()) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		msg := fmt.Sprintf("Kiln cannot evaluate this alarm: its evaluation failed (%v); it is evaluated again once its definition changes.", v)
		e.log.Error("alarm evaluation panicked; the alarm is set aside", "alarm", en.name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		en.fault.Store(&msg)
		e.markFault(ctx, en, msg, e.clock.Now())
	}()
	f()
}

// markFault puts a faulty alarm in INSUFFICIENT_DATA with the fault as its
// reason, once: an alarm already there with that reason is left alone, so
// that a fault is recorded once and not on every tick.
func (e *Engine) markFault(ctx context.Context, en *entry, reason string, now time.Time) {
	cur := en.state.Load()
	if cur.StateValue == kiln.StateInsufficientData && cur.StateReason == reason {
		return
	}
	next := &kiln.AlarmState{
		StateValue:                 kiln.StateInsufficientData,
		StateReason:                reason,
		StateUpdatedTimestamp:      now,
		StateTransitionedTimestamp: cur.StateTransitionedTimestamp,
	}
	if cur.StateValue != kiln.StateInsufficientData {
		next.StateTransitionedTimestamp = now
	}
	func() {
		// A Repo that panics too must not take the engine down with it.
		defer func() {
			if v := recover(); v != nil {
				e.log.Error("recording an alarm's fault panicked", "alarm", en.name, "panic", fmt.Sprint(v))
			}
		}()
		if !e.swap(ctx, en, cur, next) {
			return
		}
		if e.onChange != nil {
			e.onChange(en.name, *next)
		}
	}()
}

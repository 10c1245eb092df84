// Package clock is the only place in Kiln that reads the wall clock.
//
// Everything that waits (bakes, health checks, alarm periods, timeouts) takes a
// Clock, so tests drive time with a fake clock: Advance(10*time.Minute) fires
// every due timer in order and a ten-minute bake is tested in microseconds.
// The types are jonboulle/clockwork's, which etcd uses for the same purpose.
package clock

import (
	"time"

	"github.com/jonboulle/clockwork"
)

// Clock tells the time and makes timers and tickers.
type Clock = clockwork.Clock

// Fake is a Clock whose time moves only when the test advances it.
type Fake = *clockwork.FakeClock

// Timer and Ticker are what a Clock returns.
type (
	Timer  = clockwork.Timer
	Ticker = clockwork.Ticker
)

// Real returns the wall clock.
func Real() Clock { return clockwork.NewRealClock() }

// NewFake returns a fake clock set to a fixed, arbitrary instant.
func NewFake() *clockwork.FakeClock {
	return clockwork.NewFakeClockAt(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

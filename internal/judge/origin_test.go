package judge

import (
	"math"
	"math/rand/v2"
	"testing"
)

// originOf draws the fleet an event comes from when green's event rate is
// ratio times blue's and the share is s.
func originOf(rng *rand.Rand, s, ratio float64) bool {
	p := s * ratio / (s*ratio + 1 - s)
	return rng.Float64() < p
}

// rejections runs sequences of events and reports the fraction in which
// Worse (and NotWorse) ever reached 1/alpha, checked after every event.
func rejections(seed uint64, runs, events int, tolerance, ratio float64, share func(i int) float64, alpha float64) (worse, notWorse float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	bar := math.Log(1 / alpha)
	var w, n int
	t := NewOriginTest(tolerance)
	for range runs {
		t.Reset(tolerance)
		for i := range events {
			s := share(i)
			t.Observe(originOf(rng, s, ratio), s)
		}
		if t.MaxLogWorse() >= bar {
			w++
		}
		if t.MaxLogNotWorse() >= bar {
			n++
		}
	}
	return float64(w) / float64(runs), float64(n) / float64(runs)
}

func constant(s float64) func(int) float64 { return func(int) float64 { return s } }

// linear is a linear deployment's shares: 10%, 20%, ... 90%, a step every
// `every` events.
func linear(every int) func(int) float64 {
	return func(i int) float64 { return math.Min(0.9, 0.1*float64(1+i/every)) }
}

// binomialBound is the largest fraction of runs a test of level alpha may
// reject in without the test being suspect: alpha plus four standard
// errors.
func binomialBound(alpha float64, runs int) float64 {
	return alpha + 4*math.Sqrt(alpha*(1-alpha)/float64(runs))
}

// Under the null, at its boundary (the hardest case: anywhere inside, the
// e-value drifts down), neither test rejects in more than α of the runs,
// though each is checked after every event.
func TestTypeIError(t *testing.T) {
	const alpha = 0.05
	runs := 2000
	if raceEnabled {
		runs = 300
	}
	cases := []struct {
		name      string
		tolerance float64
		share     func(int) float64
		events    int
	}{
		{"canary 10%, no tolerance", 0, constant(0.1), 2000},
		{"canary 10%, tolerance 10%", 0.1, constant(0.1), 2000},
		{"half and half, tolerance 50%", 0.5, constant(0.5), 2000},
		{"linear steps, tolerance 10%", 0.1, linear(200), 2000},
		{"share changing every event", 0.2, func(i int) float64 { return 0.05 + 0.9*float64(i%17)/16 }, 300},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// At the boundary both nulls hold: green's rate is exactly
			// (1+tolerance) times blue's.
			w, n := rejections(uint64(i), runs, c.events, c.tolerance, 1+c.tolerance, c.share, alpha)
			limit := binomialBound(alpha, runs)
			if w > limit {
				t.Errorf("Worse rejected a true null in %.3f of runs, want at most α = %v (+4 s.e. %.3f)", w, alpha, limit)
			}
			if n > limit {
				t.Errorf("NotWorse rejected a true null in %.3f of runs, want at most α = %v (+4 s.e. %.3f)", n, alpha, limit)
			}
			t.Logf("false rejections: Worse %.4f, NotWorse %.4f (α = %v)", w, n, alpha)
		})
	}
}

// When the share changes mid-stream, a test that kept using the share it
// started with would be fooled: green's share of the events grows with its
// share of the traffic. Conditioning each event on its own share keeps the
// test valid; the stale-share test is the control showing the case bites.
func TestShareChangeStaysValid(t *testing.T) {
	const events, alpha = 1500, 0.01
	runs := 1000
	if raceEnabled {
		runs = 200
	}
	rng := rand.New(rand.NewPCG(7, 7))
	bar := math.Log(1 / alpha)
	share := linear(150)
	var right, stale int
	a, b := NewOriginTest(0.1), NewOriginTest(0.1)
	for range runs {
		a.Reset(0.1)
		b.Reset(0.1)
		for i := range events {
			s := share(i)
			from := originOf(rng, s, 1) // A/A: equal rates
			a.Observe(from, s)
			b.Observe(from, share(0))
		}
		if a.MaxLogWorse() >= bar {
			right++
		}
		if b.MaxLogWorse() >= bar {
			stale++
		}
	}
	if got := float64(right) / float64(runs); got > binomialBound(alpha, runs) {
		t.Errorf("with the share of each event, false alarms in %.3f of runs, want at most α = %v", got, alpha)
	}
	if got := float64(stale) / float64(runs); got < 0.5 {
		t.Errorf("with a stale share, false alarms in %.3f of runs; the case does not test what it should", got)
	}
}

// Under the alternative the tests reject, and fast when the regression is
// large.
func TestPower(t *testing.T) {
	const alpha = 0.01
	bar := math.Log(1 / alpha)
	cases := []struct {
		name      string
		tolerance float64
		ratio     float64
		share     float64
		within    int // events
		notWorse  bool
	}{
		{"10x errors on a 10% canary", 0.1, 10, 0.1, 60, false},
		{"50x errors on a 10% canary", 0.1, 50, 0.1, 25, false},
		{"total outage, 10% canary", 0.1, 1000, 0.1, 10, false},
		{"2x errors, half and half", 0.1, 2, 0.5, 400, false},
		{"green half as bad, tolerance 10%", 0.1, 0.5, 0.5, 400, true},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const runs = 400
			hit := 0
			var n OriginTest
			for range runs {
				n.Reset(c.tolerance)
				for range c.within {
					n.Observe(originOf(rng, c.share, c.ratio), c.share)
				}
				top := n.MaxLogWorse()
				if c.notWorse {
					top = n.MaxLogNotWorse()
				}
				if top >= bar {
					hit++
				}
			}
			if frac := float64(hit) / runs; frac < 0.9 {
				t.Errorf("rejected within %d events in %.2f of runs, want at least 0.9", c.within, frac)
			}
		})
	}
}

// Each event's factor has expectation 1 under the boundary of the null,
// for any share: the product is a martingale.
func TestFactorIsFair(t *testing.T) {
	for _, tol := range []float64{0, 0.1, 1, 9} {
		for _, s := range []float64{1e-6, 0.01, 0.1, 0.5, 0.9, 0.999999} {
			var o OriginTest
			o.Reset(tol)
			o.prepare(s)
			p := s * (1 + tol) / (s*(1+tol) + 1 - s)
			for k := range gridSize {
				for _, pair := range [][2]float64{{o.up.logGreen[k], o.up.logBlue[k]}, {o.down.logGreen[k], o.down.logBlue[k]}} {
					e := p*math.Exp(pair[0]) + (1-p)*math.Exp(pair[1])
					if math.Abs(e-1) > 1e-9 {
						t.Fatalf("tolerance %v, share %v, alternative %d: E[factor] = %v, want 1", tol, s, k, e)
					}
				}
			}
		}
	}
}

func TestDegenerateShares(t *testing.T) {
	o := NewOriginTest(0.1)
	for _, s := range []float64{0, 1, -1, 2, math.NaN(), math.Inf(1)} {
		o.Observe(true, s)
	}
	if n, _ := o.Events(); n != 0 || o.LogWorse() != 0 {
		t.Fatalf("events with shares outside (0, 1) counted: %d events, log e-value %v", n, o.LogWorse())
	}
	if !math.IsNaN(o.RateRatio()) {
		t.Fatalf("rate ratio without events = %v, want NaN", o.RateRatio())
	}
}

func TestRateRatio(t *testing.T) {
	o := NewOriginTest(0)
	// 10% share, 20 green events and 90 blue: green's rate per request is
	// 20/0.1 against 90/0.9, twice blue's.
	for range 20 {
		o.Observe(true, 0.1)
	}
	for range 90 {
		o.Observe(false, 0.1)
	}
	if r := o.RateRatio(); math.Abs(r-2) > 1e-9 {
		t.Fatalf("rate ratio %v, want 2", r)
	}
}

func BenchmarkObserve(b *testing.B) {
	o := NewOriginTest(0.1)
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		o.Observe(rng.Float64() < 0.1, 0.1)
	}
}

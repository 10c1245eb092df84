package judge

import "math"

// OriginTest is an anytime-valid sequential test of where events come from.
//
// Both fleets of an endpoint serve the same stream of requests at the same
// time; the router sends each request to the new fleet (green) with
// probability s, its share, and to the old one (blue) otherwise. An event is
// something a request can end in: an error, or a latency above a threshold.
// If green's event probability is p_G and blue's p_B, an event comes from
// green with probability
//
//	θ(s, δ) = s·e^δ / (s·e^δ + 1 − s),  δ = log(p_G / p_B),
//
// whatever p_B is, and whatever it was for earlier events: a load spike or
// an outage downstream that hurts both fleets alike moves both rates and
// leaves δ alone. Given the share at the time of each event, the origins are
// independent Bernoulli draws with these probabilities, so the judge tests
// the one number δ. This is the conditional (binomial) view of two Poisson
// counts that Lindon and Malek use for multinomial count data ("Anytime-Valid
// Inference for Multinomial Count Data", NeurIPS 2022), made to work with a
// share that changes from one event to the next.
//
// Worse tests H0: δ ≤ δ0 against δ > δ0; NotWorse tests H0: δ ≥ δ0 against
// δ < δ0. δ0 is the tolerance on the log scale, log(1+tolerance). Each is a
// mixture, with equal weights, of the likelihood ratios of alternatives on a
// fixed grid: the ratio of alternative δ1 to δ0 multiplies, for an event
// with share s from green (x = 1) or blue (x = 0), by
//
//	θ(s,δ1)^x (1−θ(s,δ1))^(1−x) / (θ(s,δ0)^x (1−θ(s,δ0))^(1−x)).
//
// Its expectation given the past is 1 when δ = δ0, whatever s is, so the
// product over events is a nonnegative martingale starting at 1 even when s
// changes at every linear traffic step. Under the rest of each null it is a
// supermartingale: θ is a Bernoulli law with natural parameter logit(s)+δ,
// and the cumulant log(1+e^η) is convex, so moving the truth away from δ0,
// away from the alternative, only lowers the expectation. A mixture of
// (super)martingales is one too, and Ville's inequality bounds the chance
// that it ever reaches 1/α by α: the test may be looked at after every
// request, and stopped whenever, without inflating its error. Lindon and
// Malek mix over a Dirichlet prior, which has a closed form only for a
// fixed allocation; a finite grid keeps the guarantee for any sequence of
// shares at the price of a constant factor (the number of grid points) in
// the evidence needed.
//
// The zero value is not ready for use; see NewOriginTest.
type OriginTest struct {
	delta0 float64
	up     mixture // Worse: alternatives above δ0
	down   mixture // NotWorse: alternatives below δ0
	// The per-event factors for the last share seen: shares change at
	// traffic steps only, so almost every event reuses them.
	share                 float64
	events, green         int64   // events, and events from green
	expectedGreen         float64 // Σ s over events: green's count if δ were 0
	maxWorse, maxNotWorse float64 // running maxima of the log e-values
}

// mixture is an equally weighted mixture of the likelihood ratios of the
// alternatives of the grid. It keeps each component's log, which is exact,
// and the components scaled by a common factor e^scale, which makes an
// event a multiplication per component and the mixture a sum; the scaled
// values are rebuilt from the logs whenever they drift far from 1, so that
// neither overflow nor underflow loses a component.
type mixture struct {
	log    [gridSize]float64 // log likelihood ratio of each alternative
	scaled [gridSize]float64 // exp(log - scale)
	scale  float64
	value  float64 // log of the mixture: log(mean(exp(log)))
	// Per-event log factors and factors for the current share, for an
	// event from blue and from green.
	logBlue, logGreen [gridSize]float64
	blue, green       [gridSize]float64
}

func (m *mixture) reset() {
	*m = mixture{}
	for k := range m.scaled {
		m.scaled[k] = 1
	}
}

func (m *mixture) observe(fromGreen bool) {
	lf, f := &m.logBlue, &m.blue
	if fromGreen {
		lf, f = &m.logGreen, &m.green
	}
	sum, top := 0.0, 0.0
	for k := range gridSize {
		m.log[k] += lf[k]
		m.scaled[k] *= f[k]
		sum += m.scaled[k]
		top = max(top, m.scaled[k])
	}
	if top > 1e100 || top < 1e-100 {
		m.rescale()
		sum = 0
		for k := range gridSize {
			sum += m.scaled[k]
		}
	}
	m.value = m.scale + math.Log(sum) - logGridSize
}

// rescale rebuilds the scaled values from the logs around the largest.
func (m *mixture) rescale() {
	m.scale = m.log[0]
	for _, l := range m.log[1:] {
		m.scale = max(m.scale, l)
	}
	for k := range gridSize {
		m.scaled[k] = math.Exp(m.log[k] - m.scale)
	}
}

// The grid of alternatives: offsets from δ0 on the log scale, from a 5%
// difference in rates to a factor of about 1100 (a total outage of green
// against a healthy blue is near the top). Each alternative gets weight
// 1/gridSize.
var grid = [...]float64{0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 3, 4.5, 7}

const gridSize = len(grid)

// logGridSize is the log of the number of alternatives: the mixture's
// normalisation.
var logGridSize = math.Log(float64(gridSize))

// NewOriginTest returns a test whose nulls meet at green's rate being
// (1+tolerance) times blue's. tolerance must be above -1.
func NewOriginTest(tolerance float64) *OriginTest {
	t := &OriginTest{}
	t.Reset(tolerance)
	return t
}

// Reset forgets every event and sets the tolerance.
func (t *OriginTest) Reset(tolerance float64) {
	*t = OriginTest{delta0: math.Log1p(tolerance), share: -1}
	t.up.reset()
	t.down.reset()
}

// Observe records one event with the green share s the request it ended was
// routed with. Events with s outside (0, 1) say nothing about δ (the origin
// was certain) and are ignored; so are NaN shares.
func (t *OriginTest) Observe(fromGreen bool, s float64) {
	if !(s > 0 && s < 1) {
		return
	}
	if s != t.share {
		t.prepare(s)
	}
	t.events++
	t.expectedGreen += s
	if fromGreen {
		t.green++
	}
	t.up.observe(fromGreen)
	t.down.observe(fromGreen)
	t.maxWorse = max(t.maxWorse, t.up.value)
	t.maxNotWorse = max(t.maxNotWorse, t.down.value)
}

// prepare computes the per-event log likelihood ratios for share s. With
// D(δ) = s·e^δ + 1 − s, an event from blue adds log D(δ0) − log D(δ1) and
// one from green adds that plus δ1 − δ0.
func (t *OriginTest) prepare(s float64) {
	t.share = s
	logD0 := logD(s, t.delta0)
	for k, g := range grid {
		u, d := &t.up, &t.down
		u.logBlue[k] = logD0 - logD(s, t.delta0+g)
		u.logGreen[k] = u.logBlue[k] + g
		d.logBlue[k] = logD0 - logD(s, t.delta0-g)
		d.logGreen[k] = d.logBlue[k] - g
		u.blue[k], u.green[k] = math.Exp(u.logBlue[k]), math.Exp(u.logGreen[k])
		d.blue[k], d.green[k] = math.Exp(d.logBlue[k]), math.Exp(d.logGreen[k])
	}
}

// logD is log(s·e^δ + 1 − s), computed without overflow for large δ.
func logD(s, delta float64) float64 {
	a := math.Log(s) + delta
	b := math.Log1p(-s)
	if a > b {
		return a + math.Log1p(math.Exp(b-a))
	}
	return b + math.Log1p(math.Exp(a-b))
}

// LogWorse is the log of the current e-value against "green is not worse
// than blue beyond the tolerance". It starts at 0.
func (t *OriginTest) LogWorse() float64 { return t.up.value }

// LogNotWorse is the log of the current e-value against "green is worse
// than blue beyond the tolerance". It starts at 0.
func (t *OriginTest) LogNotWorse() float64 { return t.down.value }

// MaxLogWorse and MaxLogNotWorse are the largest values the log e-values
// have reached since the test started. Once one reaches log(1/α) the test
// has rejected its null at level α, for good.
func (t *OriginTest) MaxLogWorse() float64    { return t.maxWorse }
func (t *OriginTest) MaxLogNotWorse() float64 { return t.maxNotWorse }

// Events returns how many events were observed (with a share strictly
// between 0 and 1) and how many of them came from green.
func (t *OriginTest) Events() (events, fromGreen int64) { return t.events, t.green }

// ExpectedGreen is how many of the events would be expected from green if
// both fleets had the same rate: the sum of the shares.
func (t *OriginTest) ExpectedGreen() float64 { return t.expectedGreen }

// RateRatio estimates green's event rate over blue's: the observed odds of
// green events over the odds the shares alone would give. With a constant
// share s it is (g/b)·((1−s)/s), the ratio of the fleets' rates per
// request. It is NaN without events from blue or with none at all.
func (t *OriginTest) RateRatio() float64 {
	b := float64(t.events - t.green)
	if t.events == 0 || b == 0 {
		return math.NaN()
	}
	blueExpected := float64(t.events) - t.expectedGreen
	return (float64(t.green) / t.expectedGreen) / (b / blueExpected)
}

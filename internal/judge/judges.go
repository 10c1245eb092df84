package judge

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/alarm"
	"github.com/kiln-serve/kiln/internal/clock"
)

// Sample is what the judge needs of one finished request.
type Sample struct {
	// Error is true when the request failed: the model answered 5xx or
	// non-2xx, could not be reached, or timed out.
	Error bool
	// Latency is the model's latency.
	Latency time.Duration
	// Share is the new fleet's share of the traffic of the request's
	// variant when the request was routed, from 0 to 1. Requests routed
	// with a share of 0 or 1 (before the first traffic step, or once all
	// traffic is on the new fleet) are counted but compare nothing.
	Share float64
}

// Judges evaluates judge alarms (kiln.JudgeSpec) from the requests the
// gateway reports: it is the alarm engine's JudgeSource. It is safe for
// concurrent use.
//
// The server gives the gateway a Recorder for every fleet of every endpoint
// and calls Reset when a deployment starts and when it ends. Evidence is
// kept per endpoint and per tolerance: the tests of a tolerance start at
// the first evaluation of an alarm that uses it, so a judge alarm should
// exist before the deployment it is to watch starts (AutoRollbackConfiguration
// requires it anyway).
type Judges struct {
	clk clock.Clock

	mu        sync.Mutex
	endpoints map[string]*endpoint
	verdicts  map[string]verdictOf // by alarm name: the last evaluation
}

type verdictOf struct {
	Verdict
	endpoint string
}

var _ alarm.JudgeSource = (*Judges)(nil)

// New returns Judges that tell the time by clk (the wall clock if nil).
func New(clk clock.Clock) *Judges {
	if clk == nil {
		clk = clock.Real()
	}
	return &Judges{clk: clk, endpoints: map[string]*endpoint{}, verdicts: map[string]verdictOf{}}
}

// Recorder returns the recorder of one fleet of an endpoint; green is true
// for a fleet the deployment brings in. The tests pool the fleets of each
// side (an endpoint with several variants has a pair per variant); the
// reason data counts each fleet's requests. Asking twice for the same fleet
// gives recorders that count together. A recorder stays valid across Reset.
func (j *Judges) Recorder(endpointName, fleetID string, green bool) *Recorder {
	ep := j.endpoint(endpointName)
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for _, f := range ep.fleets {
		if f.id == fleetID && f.green == green {
			return &Recorder{ep: ep, green: green, fleet: f}
		}
	}
	f := &fleetCounts{id: fleetID, green: green}
	ep.fleets = append(ep.fleets, f)
	return &Recorder{ep: ep, green: green, fleet: f}
}

// Reset forgets the evidence gathered for an endpoint, so that the next
// deployment is judged on its own requests. Call it when a deployment
// starts and when it ends; the judge is INSUFFICIENT_DATA until requests
// reach both fleets again.
func (j *Judges) Reset(endpointName string) {
	ep := j.endpoint(endpointName)
	now := j.clk.Now()
	ep.mu.Lock()
	ep.reset(now)
	ep.mu.Unlock()
}

func (j *Judges) endpoint(name string) *endpoint {
	j.mu.Lock()
	defer j.mu.Unlock()
	ep := j.endpoints[name]
	if ep == nil {
		ep = &endpoint{name: name, tests: map[float64]*tests{}}
		ep.reset(j.clk.Now())
		j.endpoints[name] = ep
	}
	return ep
}

// Recorder takes the requests one fleet answers. Its Record is what the
// server calls from the gateway's recorder of that fleet.
type Recorder struct {
	ep    *endpoint
	green bool
	fleet *fleetCounts
}

// Record adds one finished request. It is safe for concurrent use and does
// not allocate.
func (r *Recorder) Record(s Sample) {
	r.ep.record(r.green, r.fleet, s)
}

// Verdict is what a judge alarm's last evaluation tells the deployment
// controller beyond its state.
type Verdict struct {
	// State is the alarm's state: OK, ALARM or INSUFFICIENT_DATA.
	State string
	// Wait is true when the judge has no verdict yet and its spec asks
	// bakes to wait for one (InsufficientData "wait").
	Wait bool
	// Promote is true when EarlyPromotion is on and the judge has shown,
	// with confidence 1−Alpha, that the new fleet is not worse than the old
	// one beyond the tolerance in every metric judged: a bake may end
	// early.
	Promote bool
}

// Verdict returns the verdict of a judge alarm's last evaluation, false if
// the alarm was never evaluated.
func (j *Judges) Verdict(alarmName string) (Verdict, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	v, ok := j.verdicts[alarmName]
	return v.Verdict, ok
}

// Alarms returns the names of the judge alarms evaluated for an endpoint,
// sorted: the alarms to evaluate again at once after Reset, so that the
// controller does not act on a verdict about evidence that is gone.
func (j *Judges) Alarms(endpointName string) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var names []string
	for name, v := range j.verdicts {
		if v.endpoint == endpointName {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Judge evaluates a judge alarm from the evidence gathered so far. It
// implements alarm.JudgeSource. The engine passes the alarm with its
// current state; when the state stays, the result has no reason (the engine
// records nothing then).
func (j *Judges) Judge(_ context.Context, a *kiln.Alarm) (alarm.Result, bool) {
	if a.Judge == nil {
		return alarm.Result{}, false
	}
	spec := a.Judge
	ep := j.endpoint(spec.EndpointName)
	now := j.clk.Now()
	ev := ep.evidence(spec, now)
	res, v := ev.verdict(spec, a.StateValue, now)
	j.mu.Lock()
	j.verdicts[a.AlarmName] = verdictOf{v, spec.EndpointName}
	j.mu.Unlock()
	return res, true
}

// endpoint is the evidence gathered for one endpoint since its last reset.
type endpoint struct {
	name string

	mu    sync.Mutex
	since time.Time
	// Requests and errors of each side while both took traffic.
	green, blue counts
	// Requests seen with a share of 0 or 1: they compare nothing.
	unpaired int64
	// Every fleet a recorder was asked for, with its counts since the
	// reset.
	fleets []*fleetCounts
	lat    blueLatency
	// The tests, by tolerance.
	tests map[float64]*tests
}

type counts struct{ requests, errors int64 }

// fleetCounts are one fleet's requests and errors since the last reset,
// side by side with the other side's or not.
type fleetCounts struct {
	id    string
	green bool
	counts
}

// tests are the sequential tests of one endpoint for one tolerance.
type tests struct {
	tolerance float64
	scale     float64 // 1 + tolerance: green latencies are divided by it
	errors    OriginTest
	// latency[l] tests the origin of latencies above blue's quantile
	// levels[l], green's scaled down by the tolerance.
	latency [nLevels]OriginTest
	// Running maxima of the log of the mean latency e-value, and of the
	// log of mean(errors, latency), taken at each evaluation. (Each test's
	// own maxima are taken at every event; the means are taken when the
	// judge is asked, which is as valid, since any time may be a stopping
	// time, and spares every request a few exponentials.)
	maxLatency, maxBoth float64
	lastUsed            time.Time
}

// Tests nobody asked about for this long are dropped (an alarm deleted or
// given another tolerance).
const testsIdle = 10 * time.Minute

func newTests(tolerance float64, now time.Time) *tests {
	t := &tests{tolerance: tolerance, scale: 1 + tolerance, lastUsed: now}
	t.errors.Reset(tolerance)
	for l := range t.latency {
		// The tolerance is applied to the latencies, so the tests' nulls
		// meet at equal exceedance rates.
		t.latency[l].Reset(0)
	}
	return t
}

func (ep *endpoint) reset(now time.Time) {
	ep.since = now
	ep.green, ep.blue, ep.unpaired = counts{}, counts{}, 0
	ep.lat = blueLatency{}
	// Fleets idle since the last reset are gone (their deployment retired
	// them): stop listing them. A recorder of one still works, unlisted.
	kept := ep.fleets[:0]
	for _, f := range ep.fleets {
		if f.requests > 0 {
			f.counts = counts{}
			kept = append(kept, f)
		}
	}
	clear(ep.fleets[len(kept):])
	ep.fleets = kept
	for tol, t := range ep.tests {
		ep.tests[tol] = newTests(tol, t.lastUsed)
	}
}

func (ep *endpoint) record(green bool, f *fleetCounts, s Sample) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	f.requests++
	if s.Error {
		f.errors++
	}
	if !(s.Share > 0 && s.Share < 1) {
		ep.unpaired++
		if !green && s.Share == 0 {
			ep.lat.add(s.Latency)
		}
		return
	}
	c := &ep.blue
	if green {
		c = &ep.green
	}
	c.requests++
	if s.Error {
		c.errors++
	}
	for _, t := range ep.tests {
		if s.Error {
			t.errors.Observe(green, s.Share)
		}
		lat := float64(s.Latency)
		if green {
			lat /= t.scale
		}
		for l, c := range ep.lat.thresholds {
			if c > 0 && lat > float64(c) {
				t.latency[l].Observe(green, s.Share)
			}
		}
	}
	// The thresholds move only after the request was judged against them.
	if !green {
		ep.lat.add(s.Latency)
	}
}

// logLatency is the log of the latency e-value: the mean of the levels'.
func (t *tests) logLatency() float64 {
	var v [nLevels]float64
	for l := range t.latency {
		v[l] = t.latency[l].LogWorse()
	}
	return logMeanExpN(v[:])
}

func logMean2(a, b float64) float64 { return logMeanExpN([]float64{a, b}) }

func logMeanExpN(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = max(m, x)
	}
	sum := 0.0
	for _, x := range v {
		sum += math.Exp(x - m)
	}
	return m + math.Log(sum/float64(len(v)))
}

// evidence copies what an alarm's verdict needs, registering the alarm's
// tolerance if it is new.
func (ep *endpoint) evidence(spec *kiln.JudgeSpec, now time.Time) evidence {
	tol := spec.ToleranceOrDefault()
	ep.mu.Lock()
	defer ep.mu.Unlock()
	t := ep.tests[tol]
	if t == nil {
		t = newTests(tol, now)
		ep.tests[tol] = t
	}
	t.lastUsed = now
	t.maxLatency = max(t.maxLatency, t.logLatency())
	t.maxBoth = max(t.maxBoth, logMean2(t.errors.LogWorse(), t.logLatency()))
	for k, o := range ep.tests {
		if now.Sub(o.lastUsed) > testsIdle {
			delete(ep.tests, k)
		}
	}
	ev := evidence{
		endpoint: ep.name, since: ep.since,
		green: ep.green, blue: ep.blue, unpaired: ep.unpaired,
		thresholds: ep.lat.thresholds,
		t:          *t,
	}
	for _, f := range ep.fleets {
		if f.requests > 0 {
			ev.fleets = append(ev.fleets, *f)
		}
	}
	return ev
}

// evidence is a consistent copy of an endpoint's evidence for one alarm.
type evidence struct {
	endpoint    string
	since       time.Time
	green, blue counts
	unpaired    int64
	thresholds  [nLevels]time.Duration
	fleets      []fleetCounts
	t           tests
}

package judge

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/alarm"
	"github.com/kiln-serve/kiln/internal/clock"
)

// fleetModel is how a simulated fleet answers: its error rate, and its
// latencies, lognormal around median with spread sigma.
type fleetModel struct {
	errRate float64
	median  time.Duration
	sigma   float64
}

var healthy = fleetModel{errRate: 0.001, median: 50 * time.Millisecond, sigma: 0.5}

func (f fleetModel) sample(rng *rand.Rand, share float64) Sample {
	lat := time.Duration(float64(f.median) * math.Exp(f.sigma*rng.NormFloat64()))
	return Sample{Error: rng.Float64() < f.errRate, Latency: lat, Share: share}
}

// traffic sends n requests of one endpoint, each to green with probability
// share.
type traffic struct {
	rng         *rand.Rand
	blue, green *Recorder
	blueModel   fleetModel
	greenModel  fleetModel
}

func newTraffic(j *Judges, endpoint string, seed uint64, blue, green fleetModel) *traffic {
	return &traffic{
		rng:  rand.New(rand.NewPCG(seed, 99)),
		blue: j.Recorder(endpoint, "blue", false), green: j.Recorder(endpoint, "green", true),
		blueModel: blue, greenModel: green,
	}
}

func (tr *traffic) send(n int, share float64) {
	for range n {
		if tr.rng.Float64() < share {
			tr.green.Record(tr.greenModel.sample(tr.rng, share))
		} else {
			tr.blue.Record(tr.blueModel.sample(tr.rng, share))
		}
	}
}

func judgeAlarm(name, endpoint string, mut func(*kiln.JudgeSpec)) *kiln.Alarm {
	a := &kiln.Alarm{AlarmName: name, Judge: &kiln.JudgeSpec{EndpointName: endpoint}}
	if mut != nil {
		mut(a.Judge)
	}
	return a
}

func tolerance(v float64) *float64 { return &v }

func mustJudge(t *testing.T, j *Judges, a *kiln.Alarm) alarm.Result {
	t.Helper()
	if err := a.Validate(); err != nil {
		t.Fatalf("alarm does not validate: %v", err)
	}
	res, ok := j.Judge(context.Background(), a)
	if !ok {
		t.Fatalf("Judge gave no verdict")
	}
	if !json.Valid([]byte(res.ReasonData)) {
		t.Fatalf("reason data is not JSON: %s", res.ReasonData)
	}
	return res
}

func TestInsufficientData(t *testing.T) {
	clk := clock.NewFake()
	j := New(clk)
	wait := judgeAlarm("judge", "ep", nil)
	pass := judgeAlarm("judge-pass", "ep", func(s *kiln.JudgeSpec) { s.InsufficientData = kiln.JudgePass })
	mustJudge(t, j, wait) // registers the tests
	mustJudge(t, j, pass)

	tr := newTraffic(j, "ep", 1, healthy, healthy)
	tr.send(200, 0)   // before any traffic step: nothing to compare
	tr.send(300, 0.1) // about 30 requests on green
	res := mustJudge(t, j, wait)
	if res.State != kiln.StateInsufficientData {
		t.Fatalf("state %s after ~30 green requests, want INSUFFICIENT_DATA: %s", res.State, res.Reason)
	}
	for _, want := range []string{"insufficient data", "a verdict needs 100 of each"} {
		if !strings.Contains(res.Reason, want) {
			t.Errorf("reason %q does not say %q", res.Reason, want)
		}
	}
	if v, _ := j.Verdict("judge"); !v.Wait || v.Promote {
		t.Errorf("verdict %+v, want Wait", v)
	}
	mustJudge(t, j, pass)
	if v, _ := j.Verdict("judge-pass"); v.Wait || v.State != kiln.StateInsufficientData {
		t.Errorf("verdict with InsufficientData pass %+v, want INSUFFICIENT_DATA without Wait", v)
	}

	tr.send(2000, 0.1)
	res = mustJudge(t, j, wait)
	if res.State != kiln.StateOK {
		t.Fatalf("state %s after ~230 green requests of a healthy fleet, want OK: %s", res.State, res.Reason)
	}
	if v, _ := j.Verdict("judge"); v.Wait {
		t.Errorf("verdict %+v once OK, want no Wait", v)
	}

	// Once all traffic is on green nothing compares, and the verdict
	// stands.
	tr.send(5000, 1)
	if res = mustJudge(t, j, wait); res.State != kiln.StateOK {
		t.Fatalf("state %s with all traffic on green, want OK kept: %s", res.State, res.Reason)
	}

	j.Reset("ep")
	if res = mustJudge(t, j, wait); res.State != kiln.StateInsufficientData {
		t.Fatalf("state %s after Reset, want INSUFFICIENT_DATA", res.State)
	}
	if got := j.Alarms("ep"); !slices.Equal(got, []string{"judge", "judge-pass"}) {
		t.Errorf("Alarms(ep) = %q, want judge and judge-pass", got)
	}
	if got := j.Alarms("other"); len(got) != 0 {
		t.Errorf("Alarms(other) = %q, want none", got)
	}
}

func TestErrorRegression(t *testing.T) {
	cases := []struct {
		name       string
		green      fleetModel
		share      float64
		within     int // requests
		metrics    []string
		wantInText string
	}{
		{"total outage on a 10% canary", fleetModel{1, 50 * time.Millisecond, 0.5}, 0.1, 200, []string{"errors"}, "Errors: new fleet"},
		{"5% errors on a 10% canary", fleetModel{0.05, 50 * time.Millisecond, 0.5}, 0.1, 5000, nil, "rate ratio"},
		{"1% errors, half and half", fleetModel{0.01, 50 * time.Millisecond, 0.5}, 0.5, 10000, nil, "rate ratio"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := New(clock.NewFake())
			a := judgeAlarm("judge", "ep", func(s *kiln.JudgeSpec) { s.Metrics = c.metrics })
			mustJudge(t, j, a)
			tr := newTraffic(j, "ep", uint64(i), healthy, c.green)
			tr.send(c.within, c.share)
			res := mustJudge(t, j, a)
			if res.State != kiln.StateAlarm {
				t.Fatalf("state %s, want ALARM: %s", res.State, res.Reason)
			}
			if !strings.Contains(res.Reason, "is worse than the old one") || !strings.Contains(res.Reason, c.wantInText) {
				t.Errorf("reason %q does not explain the verdict", res.Reason)
			}
			var d reasonData
			if err := json.Unmarshal([]byte(res.ReasonData), &d); err != nil {
				t.Fatal(err)
			}
			if d.Verdict != verdictWorse || d.Errors == nil || d.Errors.FromNewFleet == 0 || d.NewFleet.Errors == 0 || len(d.Fleets) != 2 {
				t.Errorf("reason data %s does not carry the evidence", res.ReasonData)
			}
			// A test that has rejected stays rejected: more healthy traffic
			// does not bring it back to OK.
			tr.greenModel = healthy
			tr.send(20000, c.share)
			if res := mustJudge(t, j, a); res.State != kiln.StateAlarm {
				t.Errorf("state %s after more traffic, want ALARM kept", res.State)
			}
		})
	}
}

func TestLatencyRegression(t *testing.T) {
	slow := healthy
	slow.median = 2 * healthy.median // p50 and p99 both +100%
	tail := healthy
	tail.sigma = healthy.sigma + math.Log(2)/2.326 // p99 +100%, median the same

	for i, green := range []fleetModel{slow, tail} {
		j := New(clock.NewFake())
		both := judgeAlarm("judge", "ep", nil)
		errorsOnly := judgeAlarm("errors-only", "ep", func(s *kiln.JudgeSpec) { s.Metrics = []string{kiln.JudgeErrors} })
		mustJudge(t, j, both)
		mustJudge(t, j, errorsOnly)
		tr := newTraffic(j, "ep", uint64(i), healthy, green)
		tr.send(3000, 0) // blue's baseline
		tr.send(40000, 0.1)
		if res := mustJudge(t, j, both); res.State != kiln.StateAlarm {
			t.Errorf("case %d: state %s, want ALARM: %s", i, res.State, res.Reason)
		} else if !strings.Contains(res.Reason, "Latency: requests slower than the old fleet's p50/p90/p99") {
			t.Errorf("case %d: reason %q says nothing of latency", i, res.Reason)
		}
		if res := mustJudge(t, j, errorsOnly); res.State != kiln.StateOK {
			t.Errorf("case %d: errors-only judge is %s, want OK: %s", i, res.State, res.Reason)
		}
	}
}

// Many A/A deployments (green the same as blue) with both metrics judged:
// the judge goes to ALARM in at most α of them, with the verdict looked at
// after every hundred requests.
func TestAAFalseAlarms(t *testing.T) {
	const alpha = 0.05
	runs := 200
	if raceEnabled {
		runs = 40
	}
	alarms := 0
	for i := range runs {
		j := New(clock.NewFake())
		a := judgeAlarm("judge", "ep", func(s *kiln.JudgeSpec) { s.Alpha = alpha; s.Tolerance = tolerance(0) })
		mustJudge(t, j, a)
		tr := newTraffic(j, "ep", uint64(i), healthy, healthy)
		tr.send(1000, 0)
		for range 30 {
			tr.send(100, 0.3)
			if res, _ := j.Judge(context.Background(), a); res.State == kiln.StateAlarm {
				alarms++
				break
			}
		}
	}
	if got := float64(alarms) / float64(runs); got > binomialBound(alpha, runs) {
		t.Errorf("false alarms in %.3f of A/A runs, want at most α = %v", got, alpha)
	}
}

func TestEarlyPromotion(t *testing.T) {
	j := New(clock.NewFake())
	on := judgeAlarm("promote", "ep", func(s *kiln.JudgeSpec) {
		s.EarlyPromotion = true
		s.Metrics = []string{kiln.JudgeLatency}
	})
	off := judgeAlarm("no-promote", "ep", func(s *kiln.JudgeSpec) { s.Metrics = []string{kiln.JudgeLatency} })
	mustJudge(t, j, on)
	mustJudge(t, j, off)
	tr := newTraffic(j, "ep", 5, healthy, healthy)
	tr.send(2000, 0)
	tr.send(200, 0.5)
	if v, _ := j.Verdict("promote"); v.Promote {
		t.Fatalf("promoted after 200 requests")
	}
	// Same latencies: divided by 1.1 green's are faster than blue's at
	// every level, which the reverse tests show given enough requests.
	tr.send(60000, 0.5)
	res := mustJudge(t, j, on)
	if v, _ := j.Verdict("promote"); !v.Promote || res.State != kiln.StateOK {
		t.Fatalf("verdict %+v (%s), want OK with Promote: %s", v, res.State, res.Reason)
	}
	if !strings.Contains(res.Reason, "the bake may end early") {
		t.Errorf("reason %q does not say the bake may end early", res.Reason)
	}
	mustJudge(t, j, off)
	if v, _ := j.Verdict("no-promote"); v.Promote || v.State != kiln.StateOK {
		t.Errorf("verdict without EarlyPromotion %+v, want OK without Promote", v)
	}
}

// The judge through the real alarm engine, on a fake clock: INSUFFICIENT_DATA
// at first, OK once both fleets have served enough, ALARM when green breaks,
// each change recorded once.
func TestEngine(t *testing.T) {
	clk := clock.NewFake()
	j := New(clk)
	repo := &memRepo{alarms: []kiln.Alarm{*judgeAlarm("judge", "ep", func(s *kiln.JudgeSpec) { s.Alpha = 0.01 })}}
	changes := make(chan string, 16)
	e := alarm.NewEngine(alarm.Config{
		Clock: clk, Judges: j, Repo: repo,
		OnChange: func(name string, st kiln.AlarmState) { changes <- st.StateValue },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	tick := func() {
		t.Helper()
		if err := clk.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	state := func() string {
		st, _ := e.State("judge")
		return st.StateValue
	}
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-changes:
			if got != want {
				t.Fatalf("state changed to %s, want %s", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no state change, want %s (state %s)", want, state())
		}
	}

	tr := newTraffic(j, "ep", 11, healthy, healthy)
	tick()
	tr.send(100, 0.5)
	tick()
	if got := state(); got != kiln.StateInsufficientData {
		t.Fatalf("state %s with ~50 requests per fleet, want INSUFFICIENT_DATA", got)
	}
	tr.send(1000, 0.5)
	tick()
	expect(kiln.StateOK)
	tr.greenModel = fleetModel{errRate: 0.5, median: healthy.median, sigma: healthy.sigma}
	tr.send(400, 0.5)
	tick()
	expect(kiln.StateAlarm)
	st, _ := e.State("judge")
	if !strings.Contains(st.StateReason, "is worse than the old one") || !json.Valid([]byte(st.StateReasonData)) {
		t.Errorf("state %+v does not explain itself", st)
	}
	if saved := repo.saved(); len(saved) != 2 || saved[1].StateValue != kiln.StateAlarm {
		t.Errorf("saved states %+v, want OK then ALARM", saved)
	}

	j.Reset("ep")
	tick()
	expect(kiln.StateInsufficientData)
}

// memRepo is an in-memory alarm.Repo.
type memRepo struct {
	mu     sync.Mutex
	alarms []kiln.Alarm
	states []kiln.AlarmState
}

func (r *memRepo) ListAlarms(context.Context) ([]kiln.Alarm, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]kiln.Alarm(nil), r.alarms...), nil
}

func (r *memRepo) SaveState(_ context.Context, _ string, st kiln.AlarmState, _ kiln.AlarmHistoryItem) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, st)
	return nil
}

func (r *memRepo) saved() []kiln.AlarmState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]kiln.AlarmState(nil), r.states...)
}

// Recorders and evaluations run at once, as the gateway and the engine do.
func TestConcurrent(t *testing.T) {
	j := New(clock.NewFake())
	a := judgeAlarm("judge", "ep", nil)
	mustJudge(t, j, a)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := newTraffic(j, "ep", uint64(g), healthy, healthy)
			tr.send(5000, 0.2)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 200 {
			j.Judge(context.Background(), a)
			j.Verdict("judge")
		}
		j.Reset("ep")
	}()
	wg.Wait()
	mustJudge(t, j, a)
}

// Another tolerance is another test, started when an alarm first asks for
// it; tests nobody asks about any more are dropped.
func TestTolerances(t *testing.T) {
	clk := clock.NewFake()
	j := New(clk)
	strict := judgeAlarm("strict", "ep", func(s *kiln.JudgeSpec) { s.Tolerance = tolerance(0) })
	loose := judgeAlarm("loose", "ep", func(s *kiln.JudgeSpec) { s.Tolerance = tolerance(9); s.Metrics = []string{kiln.JudgeErrors} })
	mustJudge(t, j, strict)
	mustJudge(t, j, loose)
	worse := healthy
	worse.errRate = 0.004 // four times blue's: beyond 0%, within 900%
	tr := newTraffic(j, "ep", 2, healthy, worse)
	tr.send(200000, 0.5)
	if res := mustJudge(t, j, strict); res.State != kiln.StateAlarm {
		t.Errorf("strict judge %s, want ALARM: %s", res.State, res.Reason)
	}
	if res := mustJudge(t, j, loose); res.State != kiln.StateOK {
		t.Errorf("judge tolerating 900%% %s, want OK: %s", res.State, res.Reason)
	}
	clk.Advance(testsIdle + time.Minute)
	mustJudge(t, j, strict)
	ep := j.endpoint("ep")
	ep.mu.Lock()
	n := len(ep.tests)
	ep.mu.Unlock()
	if n != 1 {
		t.Errorf("%d tests kept, want 1 (the idle one dropped)", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	j := New(clock.NewFake())
	j.Judge(context.Background(), judgeAlarm("judge", "ep", nil))
	tr := newTraffic(j, "ep", 1, healthy, healthy)
	tr.send(5000, 0.1)
	samples := make([]Sample, 4096)
	green := make([]bool, len(samples))
	for i := range samples {
		green[i] = tr.rng.Float64() < 0.1
		samples[i] = healthy.sample(tr.rng, 0.1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i & 4095
		if green[k] {
			tr.green.Record(samples[k])
		} else {
			tr.blue.Record(samples[k])
		}
		i++
	}
}

package alarm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memSource is an in-memory metric: a value per alarm per period start. With
// traffic on, every period without a recorded value has the value 0, like an
// error count while requests flow without errors.
type memSource struct {
	mu      sync.Mutex
	values  map[string]map[time.Time]float64
	traffic bool
	err     error
	calls   int
}

func newMemSource(traffic bool) *memSource {
	return &memSource{values: map[string]map[time.Time]float64{}, traffic: traffic}
}

func (s *memSource) set(name string, period time.Time, v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values[name] == nil {
		s.values[name] = map[time.Time]float64{}
	}
	s.values[name][period] = v
}

func (s *memSource) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *memSource) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *memSource) Datapoints(_ context.Context, a *kiln.Alarm, start, end time.Time) ([]Datapoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return nil, s.err
	}
	p := time.Duration(a.Period) * time.Second
	var pts []Datapoint
	for t := start; t.Before(end); t = t.Add(p) {
		v, ok := s.values[a.AlarmName][t]
		if !ok && !s.traffic {
			continue
		}
		pts = append(pts, Datapoint{Timestamp: t, Value: v, SampleCount: 1})
	}
	return pts, nil
}

// memRepo holds alarms and records saved states.
type memRepo struct {
	mu      sync.Mutex
	alarms  []kiln.Alarm
	states  map[string]kiln.AlarmState
	history []kiln.AlarmHistoryItem
	fail    int // fail this many saves first
}

func (r *memRepo) ListAlarms(context.Context) ([]kiln.Alarm, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]kiln.Alarm(nil), r.alarms...), nil
}

func (r *memRepo) SaveState(_ context.Context, name string, st kiln.AlarmState, hist kiln.AlarmHistoryItem) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("disk full")
	}
	if r.states == nil {
		r.states = map[string]kiln.AlarmState{}
	}
	r.states[name] = st
	r.history = append(r.history, hist)
	return nil
}

func (r *memRepo) summaries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, h := range r.history {
		s = append(s, h.AlarmName+": "+h.HistorySummary)
	}
	return s
}

// errorsAlarm is Invocation5XXErrors Sum > 0 over 1-second periods.
func errorsAlarm(name string) kiln.Alarm {
	return kiln.Alarm{
		AlarmName:          name,
		Namespace:          "AWS/SageMaker",
		MetricName:         "Invocation5XXErrors",
		Dimensions:         []kiln.Dimension{{Name: "EndpointName", Value: "demo"}},
		Statistic:          "Sum",
		Period:             1,
		EvaluationPeriods:  1,
		Threshold:          0,
		ComparisonOperator: kiln.GreaterThanThreshold,
		TreatMissingData:   kiln.MissingNotBreaching,
	}
}

// harness runs an engine on a fake clock and steps it one tick at a time.
type harness struct {
	t       *testing.T
	clock   clock.Fake
	engine  *Engine
	source  *memSource
	repo    *memRepo
	ticks   chan struct{}
	changes chan string
	cancel  context.CancelFunc
	done    chan error
}

// newFakeClock returns a fake clock at a fixed instant on a minute
// boundary.
func newFakeClock() clock.Fake {
	return clockwork.NewFakeClockAt(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
}

// startEngine starts Run at an instant 700 ms into a second, so that ticks
// do not fall on period boundaries, and waits for the first tick.
func startEngine(t *testing.T, src *memSource, repo *memRepo, mod func(*Config)) *harness {
	t.Helper()
	fc := newFakeClock()
	fc.Advance(700 * time.Millisecond)
	h := &harness{t: t, clock: fc, source: src, repo: repo, ticks: make(chan struct{}), changes: make(chan string, 100), done: make(chan error, 1)}
	cfg := Config{
		Clock: fc,
		Local: src,
		Repo:  repo,
		OnChange: func(name string, st kiln.AlarmState) {
			h.changes <- name + " " + st.StateValue
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	h.engine = NewEngine(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.engine.tickDone = func() {
		select {
		case h.ticks <- struct{}{}:
		case <-ctx.Done():
		}
	}
	go func() { h.done <- h.engine.Run(ctx) }()
	t.Cleanup(h.stop)
	h.waitTick()
	return h
}

func (h *harness) waitTick() {
	h.t.Helper()
	select {
	case <-h.ticks:
	case err := <-h.done:
		h.t.Fatalf("Run returned early: %v", err)
	case <-time.After(10 * time.Second):
		h.t.Fatal("no tick within 10 s")
	}
}

// step advances the clock by one second and waits for the tick.
func (h *harness) step() {
	h.t.Helper()
	h.clock.Advance(time.Second)
	h.waitTick()
}

func (h *harness) now() time.Time { return h.clock.Now() }

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
}

func (h *harness) state(name string) string {
	h.t.Helper()
	st, ok := h.engine.State(name)
	if !ok {
		h.t.Fatalf("State(%s): unknown alarm", name)
	}
	return st.StateValue
}

func TestEngineOneSecondAlarm(t *testing.T) {
	src := newMemSource(true)
	repo := &memRepo{alarms: []kiln.Alarm{errorsAlarm("errors")}}
	h := startEngine(t, src, repo, nil)
	if got := h.state("errors"); got != kiln.StateOK {
		t.Fatalf("after the first tick: %s, want OK", got)
	}

	// Steady traffic without errors: no change, nothing written.
	for range 3 {
		h.step()
	}
	// An error 100 ms into a second, so just after a tick.
	h.clock.Advance(400 * time.Millisecond)
	breach := h.now()
	src.set("errors", breach.Truncate(time.Second), 1)
	h.clock.Advance(600 * time.Millisecond)
	h.waitTick()
	ticks := 1
	for h.state("errors") != kiln.StateAlarm {
		if ticks == 2 {
			t.Fatalf("still %s two ticks after the breach", h.state("errors"))
		}
		h.step()
		ticks++
	}
	st, _ := h.engine.State("errors")
	if d := h.now().Sub(breach); d > 2*time.Second {
		t.Errorf("ALARM %v after the breach, want at most 2 s", d)
	}
	if st.StateTransitionedTimestamp != h.now() || st.StateReasonData == "" {
		t.Errorf("ALARM state %+v: want the tick's time and reason data", st)
	}
	t.Logf("ALARM after %d ticks: %s", ticks, st.StateReason)

	// The errors stop: back to OK within two ticks.
	for ticks = 1; ; ticks++ {
		h.step()
		if h.state("errors") == kiln.StateOK {
			break
		}
		if ticks == 2 {
			t.Fatalf("still ALARM two ticks after the errors stopped")
		}
	}
	for range 3 {
		h.step()
	}
	h.stop()

	want := []string{
		"errors: Alarm updated from INSUFFICIENT_DATA to OK",
		"errors: Alarm updated from OK to ALARM",
		"errors: Alarm updated from ALARM to OK",
	}
	if got := repo.summaries(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history %q, want %q", got, want)
	}
	if got := drain(h.changes); fmt.Sprint(got) != "[errors OK errors ALARM errors OK]" {
		t.Errorf("OnChange calls %q", got)
	}
	if repo.states["errors"].StateValue != kiln.StateOK {
		t.Errorf("saved state %+v, want OK", repo.states["errors"])
	}
}

func drain(c chan string) []string {
	var s []string
	for {
		select {
		case v := <-c:
			s = append(s, v)
		default:
			return s
		}
	}
}

func TestEngineSetStateHoldsUntilNextTick(t *testing.T) {
	src := newMemSource(true)
	repo := &memRepo{alarms: []kiln.Alarm{errorsAlarm("a")}}
	h := startEngine(t, src, repo, nil)
	h.step()
	if got := h.state("a"); got != kiln.StateOK {
		t.Fatalf("state %s, want OK", got)
	}

	h.engine.SetState("a", kiln.AlarmState{StateValue: kiln.StateAlarm, StateReason: "testing"})
	st, _ := h.engine.State("a")
	if st.StateValue != kiln.StateAlarm || st.StateReason != "testing" || !st.StateUpdatedTimestamp.Equal(h.now()) {
		t.Fatalf("after SetState: %+v", st)
	}
	// It holds while no tick happens...
	h.clock.Advance(900 * time.Millisecond)
	if got := h.state("a"); got != kiln.StateAlarm {
		t.Fatalf("before the next tick: %s, want ALARM", got)
	}
	// ...and the next evaluation puts it back.
	h.clock.Advance(100 * time.Millisecond)
	h.waitTick()
	if got := h.state("a"); got != kiln.StateOK {
		t.Fatalf("after the next tick: %s, want OK", got)
	}
	h.stop()
	want := []string{"a: Alarm updated from INSUFFICIENT_DATA to OK", "a: Alarm updated from ALARM to OK"}
	if got := repo.summaries(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history %q, want %q (SetState itself is the caller's to record)", got, want)
	}
	if got := drain(h.changes); fmt.Sprint(got) != "[a OK a ALARM a OK]" {
		t.Errorf("OnChange calls %q", got)
	}
	if _, ok := h.engine.State("nope"); ok {
		t.Error("State of an unknown alarm: ok")
	}
	h.engine.SetState("nope", kiln.AlarmState{StateValue: kiln.StateAlarm}) // ignored
}

func TestEngineReloadKeepsState(t *testing.T) {
	src := newMemSource(true)
	a := errorsAlarm("a")
	repo := &memRepo{alarms: []kiln.Alarm{a}}
	h := startEngine(t, src, repo, nil)
	src.set("a", h.now().Truncate(time.Second), 5)
	h.step()
	before, _ := h.engine.State("a")
	if before.StateValue != kiln.StateAlarm {
		t.Fatalf("state %s, want ALARM", before.StateValue)
	}

	// A changed definition that still breaches: same state, same
	// transition time, no history.
	a.Threshold = 1
	a.AlarmDescription = "raised"
	stored := a
	stored.AlarmState = InitialState(h.now()) // a stale stored state is not taken
	h.engine.Reload([]kiln.Alarm{stored})
	if got, _ := h.engine.State("a"); got != before {
		t.Fatalf("after Reload: %+v, want %+v", got, before)
	}
	// The same errored second is still the latest one while the clock
	// stands; re-evaluate it under the new definition.
	if _, err := h.engine.EvaluateNow(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.engine.State("a"); got != before {
		t.Fatalf("after re-evaluation: %+v, want %+v", got, before)
	}

	// A definition the data no longer breaches: OK on the next tick.
	a.Threshold = 10
	h.engine.Reload([]kiln.Alarm{a})
	if got := h.state("a"); got != kiln.StateAlarm {
		t.Fatalf("after Reload: %s, want ALARM until the next tick", got)
	}
	h.step()
	if got := h.state("a"); got != kiln.StateOK {
		t.Fatalf("after a tick: %s, want OK", got)
	}

	// A new alarm takes its stored state; a removed one is gone.
	b := errorsAlarm("b")
	b.AlarmState = kiln.AlarmState{StateValue: kiln.StateAlarm, StateReason: "stored"}
	h.engine.Reload([]kiln.Alarm{b})
	if _, ok := h.engine.State("a"); ok {
		t.Error("a still known after it was removed")
	}
	if st, _ := h.engine.State("b"); st.StateValue != kiln.StateAlarm || st.StateReason != "stored" {
		t.Errorf("b: %+v, want its stored state", st)
	}
	// A new alarm without a state starts as CloudWatch's do.
	h.engine.Reload([]kiln.Alarm{b, errorsAlarm("c")})
	if st, _ := h.engine.State("c"); st.StateValue != kiln.StateInsufficientData || st.StateReason != ReasonInitial {
		t.Errorf("c: %+v, want the initial state", st)
	}
	// An invalid definition is not evaluated: the alarm is known, in
	// INSUFFICIENT_DATA, with a reason naming the invalid field.
	bad := errorsAlarm("bad")
	bad.Period = 0
	h.engine.Reload([]kiln.Alarm{b, bad})
	h.step()
	if st, ok := h.engine.State("bad"); !ok || st.StateValue != kiln.StateInsufficientData || !strings.Contains(st.StateReason, "Period") {
		t.Errorf("bad: %+v, %v; want INSUFFICIENT_DATA with a reason naming Period", st, ok)
	}
	if _, err := h.engine.EvaluateNow(context.Background(), "bad"); err == nil {
		t.Error("EvaluateNow of an invalid alarm: no error")
	}
	h.stop()
	want := []string{
		"a: Alarm updated from INSUFFICIENT_DATA to OK",
		"a: Alarm updated from OK to ALARM",
		"a: Alarm updated from ALARM to OK",
		"b: Alarm updated from ALARM to OK",
		"bad: Alarm updated from INSUFFICIENT_DATA to INSUFFICIENT_DATA", // the reason names the fault
	}
	if got := repo.summaries(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history %q, want %q", got, want)
	}
}

func TestEngineSourceErrorKeepsState(t *testing.T) {
	src := newMemSource(true)
	repo := &memRepo{alarms: []kiln.Alarm{errorsAlarm("a")}}
	h := startEngine(t, src, repo, nil)
	src.setErr(errors.New("metrics unavailable"))
	for range 3 {
		h.step()
	}
	if got := h.state("a"); got != kiln.StateOK {
		t.Errorf("state %s, want OK kept while the source fails", got)
	}
	if _, err := h.engine.EvaluateNow(context.Background(), "a"); err == nil {
		t.Error("EvaluateNow: no error from a failing source")
	}
	if _, err := h.engine.EvaluateNow(context.Background(), "nope"); kiln.ErrorCode(err) != kiln.ENOTFOUND {
		t.Errorf("EvaluateNow of an unknown alarm: %v, want ENOTFOUND", err)
	}
}

func TestEngineRetriesFailedSave(t *testing.T) {
	src := newMemSource(true)
	repo := &memRepo{alarms: []kiln.Alarm{errorsAlarm("a")}, fail: 1}
	h := startEngine(t, src, repo, nil)
	if got := h.state("a"); got != kiln.StateOK {
		t.Fatalf("state %s, want OK in memory although the save failed", got)
	}
	if got := repo.summaries(); len(got) != 0 {
		t.Fatalf("history %q after a failed save", got)
	}
	h.step()
	h.stop()
	if got := repo.summaries(); fmt.Sprint(got) != "[a: Alarm updated from INSUFFICIENT_DATA to OK]" {
		t.Errorf("history after the retry: %q", got)
	}
}

func TestEngineLongPeriodsOncePerPeriod(t *testing.T) {
	src := newMemSource(true)
	a := errorsAlarm("minute")
	a.Period = 60
	repo := &memRepo{alarms: []kiln.Alarm{a}}
	h := startEngine(t, src, repo, nil)
	if n := src.callCount(); n != 1 {
		t.Fatalf("%d queries after the first tick, want 1", n)
	}
	for range 58 {
		h.step()
	}
	if n := src.callCount(); n != 1 {
		t.Fatalf("%d queries within the first minute, want 1", n)
	}
	h.step() // 59.7 s: a new minute has completed
	h.step()
	if n := src.callCount(); n != 2 {
		t.Fatalf("%d queries after the minute turned, want 2", n)
	}
}

type fixedJudge struct {
	mu  sync.Mutex
	res Result
	ok  bool
}

func (j *fixedJudge) Judge(_ context.Context, a *kiln.Alarm) (Result, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.res, j.ok
}

func judgeAlarm() kiln.Alarm {
	return kiln.Alarm{AlarmName: "judge", Judge: &kiln.JudgeSpec{EndpointName: "demo", Alpha: 0.05}}
}

func TestEngineJudgeAlarms(t *testing.T) {
	// Without Judges, judge alarms are left alone.
	src := newMemSource(true)
	h := startEngine(t, src, &memRepo{alarms: []kiln.Alarm{judgeAlarm()}}, nil)
	h.step()
	if got := h.state("judge"); got != kiln.StateInsufficientData {
		t.Errorf("state %s, want INSUFFICIENT_DATA untouched", got)
	}
	if src.callCount() != 0 {
		t.Error("a judge alarm was queried as a metric")
	}
	h.stop()

	j := &fixedJudge{res: Result{State: kiln.StateAlarm, Reason: "regression"}, ok: true}
	repo := &memRepo{alarms: []kiln.Alarm{judgeAlarm()}}
	h = startEngine(t, src, repo, func(c *Config) { c.Judges = j })
	if st, _ := h.engine.State("judge"); st.StateValue != kiln.StateAlarm || st.StateReason != "regression" {
		t.Errorf("state %+v, want the judge's verdict", st)
	}
	j.mu.Lock()
	j.ok = false // no verdict: keep
	j.res.State = kiln.StateOK
	j.mu.Unlock()
	h.step()
	if got := h.state("judge"); got != kiln.StateAlarm {
		t.Errorf("state %s, want ALARM kept without a verdict", got)
	}
}

func TestStateUpdateItem(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	from := kiln.AlarmState{StateValue: "OK", StateReason: "fine"}
	to := kiln.AlarmState{StateValue: "ALARM", StateReason: "bad", StateReasonData: `{"version":"1.0"}`, StateUpdatedTimestamp: at}
	h := StateUpdateItem("a", from, to)
	want := kiln.AlarmHistoryItem{
		AlarmName:       "a",
		Timestamp:       at,
		HistoryItemType: "StateUpdate",
		HistorySummary:  "Alarm updated from OK to ALARM",
		HistoryData:     `{"version":"1.0","oldState":{"stateValue":"OK","stateReason":"fine"},"newState":{"stateValue":"ALARM","stateReason":"bad","stateReasonData":{"version":"1.0"}}}`,
	}
	if h != want {
		t.Errorf("got %+v\nwant %+v", h, want)
	}
}

// constSource returns the same data points for every alarm: the cheapest
// possible source, so that a benchmark measures the engine.
type constSource struct{ points []Datapoint }

func (s constSource) Datapoints(context.Context, *kiln.Alarm, time.Time, time.Time) ([]Datapoint, error) {
	return s.points, nil
}

// BenchmarkEvaluate10kAlarms measures one tick over 10,000 1-second, 3 of 5
// alarms, in CPU time per alarm.
func BenchmarkEvaluate10kAlarms(b *testing.B) {
	const n = 10000
	fc := newFakeClock()
	var alarms []kiln.Alarm
	for i := range n {
		a := errorsAlarm(fmt.Sprintf("alarm-%05d", i))
		a.EvaluationPeriods, a.DatapointsToAlarm = 5, 3
		alarms = append(alarms, a)
	}
	start, _ := Window(&alarms[0], fc.Now())
	var pts []Datapoint
	for i := range RangePeriods(&alarms[0]) {
		pts = append(pts, Datapoint{Timestamp: start.Add(time.Duration(i) * time.Second), Value: float64(i % 2), SampleCount: 10})
	}
	e := NewEngine(Config{Clock: fc, Local: constSource{pts}})
	e.Reload(alarms)
	ctx := context.Background()
	e.tick(ctx) // the first evaluation changes every state
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.tick(ctx)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/alarm")
}

// BenchmarkEvaluate measures Evaluate with its explanation, as on a state
// change.
func BenchmarkEvaluate(b *testing.B) {
	a := errorsAlarm("a")
	a.EvaluationPeriods, a.DatapointsToAlarm = 5, 3
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	start, _ := Window(&a, now)
	var pts []Datapoint
	for i := range RangePeriods(&a) {
		pts = append(pts, Datapoint{Timestamp: start.Add(time.Duration(i) * time.Second), Value: float64(i % 2), SampleCount: 10})
	}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(&a, pts, now)
	}
}

// TestEngineComposite: a composite alarm follows its rule over the states
// of the alarms it names, in the tick that changes them, through a
// composite of composites too.
func TestEngineComposite(t *testing.T) {
	src := newMemSource(true)
	latency := errorsAlarm("latency")
	latency.MetricName = "ModelLatency"
	both := kiln.Alarm{AlarmName: "both", AlarmRule: `ALARM(errors) AND ALARM("latency")`}
	either := kiln.Alarm{AlarmName: "either", AlarmRule: `ALARM(errors) OR ALARM(latency)`}
	// Defined before the composite it watches: it still sees its new state.
	top := kiln.Alarm{AlarmName: "top", AlarmRule: `ALARM(both) AND NOT ALARM(missing)`}
	repo := &memRepo{alarms: []kiln.Alarm{top, errorsAlarm("errors"), latency, both, either}}
	h := startEngine(t, src, repo, nil)
	check := func(when string, want map[string]string) {
		t.Helper()
		for name, st := range want {
			if got := h.state(name); got != st {
				t.Errorf("%s: %s is %s, want %s", when, name, got, st)
			}
		}
	}
	check("at the start", map[string]string{"both": kiln.StateOK, "either": kiln.StateOK, "top": kiln.StateOK})

	h.clock.Advance(400 * time.Millisecond)
	src.set("errors", h.now().Truncate(time.Second), 1)
	h.clock.Advance(600 * time.Millisecond)
	h.waitTick()
	h.step()
	check("errors in ALARM", map[string]string{"errors": kiln.StateAlarm, "both": kiln.StateOK, "either": kiln.StateAlarm, "top": kiln.StateOK})

	h.clock.Advance(400 * time.Millisecond)
	src.set("errors", h.now().Truncate(time.Second), 1)
	src.set("latency", h.now().Truncate(time.Second), 1)
	h.clock.Advance(600 * time.Millisecond)
	h.waitTick()
	h.step()
	check("both in ALARM", map[string]string{"both": kiln.StateAlarm, "top": kiln.StateAlarm})
	st, _ := h.engine.State("top")
	if st.StateReason != "AlarmRule evaluated to TRUE." || !strings.Contains(st.StateReasonData, `"Name":"missing","State":"(no such alarm)"`) {
		t.Errorf("top's state %+v: want the rule's verdict and each child's state", st)
	}
}

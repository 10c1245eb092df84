package alarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
)

// Source returns an alarm's data points: one per period of [start, end),
// stamped with the period's start, for the periods that have data. start and
// end are on period boundaries (see Window). It must be safe for concurrent
// use.
type Source interface {
	Datapoints(ctx context.Context, a *kiln.Alarm, start, end time.Time) ([]Datapoint, error)
}

// Repo is where alarm definitions come from and where state changes go.
// It must be safe for concurrent use.
type Repo interface {
	// ListAlarms returns every alarm, with its stored state.
	ListAlarms(ctx context.Context) ([]kiln.Alarm, error)
	// SaveState durably records an alarm's new state and the history item
	// of the transition. The engine calls it only when the state changes.
	SaveState(ctx context.Context, name string, st kiln.AlarmState, hist kiln.AlarmHistoryItem) error
}

// JudgeSource evaluates judge alarms (alarms with a Judge), which compare an
// endpoint's new fleet with its old one instead of a metric with a
// threshold. It is called on every tick for every judge alarm, so it should
// answer from data it already holds.
type JudgeSource interface {
	// Judge returns the alarm's state, or false when it has no verdict and
	// the state is to be kept.
	Judge(ctx context.Context, a *kiln.Alarm) (Result, bool)
}

// Config configures an Engine.
type Config struct {
	// Clock tells the time and makes the ticker. If nil, the wall clock.
	Clock clock.Clock
	// Logger receives source errors and failed saves. If nil, nothing is
	// logged.
	Logger *slog.Logger
	// Local is Kiln's own metrics, the source of alarms without a
	// Prometheus query. If nil, those alarms are not evaluated.
	Local Source
	// Prometheus is the source of alarms with a Prometheus query. If nil,
	// those alarms are not evaluated.
	Prometheus Source
	// Judges evaluates judge alarms. If nil, judge alarms are left as they
	// are: another component owns them.
	Judges JudgeSource
	// Repo supplies the alarms when Run starts and records state changes.
	// If nil, Run starts with the alarms given to Reload and nothing is
	// recorded.
	Repo Repo
	// Interval is how often alarms are evaluated. If zero, every second.
	Interval time.Duration
	// MaxRemoteQueries bounds how many Prometheus evaluations run at once;
	// an alarm whose evaluation finds no free slot waits for the next tick.
	// If zero, 8.
	MaxRemoteQueries int
	// OnChange, if set, is called after every state change, from
	// evaluation (once the change is recorded) or from SetState. It is
	// called on the goroutine that made the change and must not block.
	OnChange func(name string, st kiln.AlarmState)
}

// Engine evaluates metric alarms on a schedule, keeps their current states
// in memory for the deployment controller, and records state changes.
//
// Alarms with periods under 60 seconds are evaluated on every tick (every
// second by default), so that a 1-second alarm sees a breach in the last
// complete second within one or two seconds. Alarms with longer periods are
// evaluated when a new period completes, and at least once a minute so
// that late data counts. Alarms with a Prometheus query are evaluated in
// the background, so that a slow server does not hold the others back.
type Engine struct {
	clock      clock.Clock
	log        *slog.Logger
	local      Source
	prometheus Source
	judges     JudgeSource
	repo       Repo
	interval   time.Duration
	onChange   func(string, kiln.AlarmState)

	mu      sync.RWMutex
	entries map[string]*entry
	list    []*entry // the entries in definition order; replaced, never changed

	remote chan struct{}  // a slot per running Prometheus evaluation
	wg     sync.WaitGroup // Prometheus evaluations in flight

	tickDone func() // called after each tick; for tests
}

// entry is one alarm.
type entry struct {
	name  string
	def   atomic.Pointer[kiln.Alarm]      // the definition; its state fields are unused
	state atomic.Pointer[kiln.AlarmState] // the current state
	busy  atomic.Bool                     // a Prometheus evaluation is in flight
	// fault, when set, is why the alarm is not evaluated: its definition is
	// invalid, or evaluating it failed. It clears when the definition
	// changes.
	fault atomic.Pointer[string]

	// mu guards the fields below, and orders state changes with their
	// saves so that the Repo sees them in order.
	mu       sync.Mutex
	changed  bool      // new or redefined: evaluate on the next tick
	lastEval time.Time // when it was last evaluated
	lastEnd  time.Time // the end of the range it was last evaluated over
	lastErr  string    // the last source error, logged once
	unsaved  *kiln.AlarmHistoryItem
}

// NewEngine returns an engine with no alarms; Run loads them.
func NewEngine(cfg Config) *Engine {
	e := &Engine{
		clock:      cfg.Clock,
		log:        cfg.Logger,
		local:      cfg.Local,
		prometheus: cfg.Prometheus,
		judges:     cfg.Judges,
		repo:       cfg.Repo,
		interval:   cfg.Interval,
		onChange:   cfg.OnChange,
		entries:    map[string]*entry{},
	}
	if e.clock == nil {
		e.clock = clock.Real()
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.interval <= 0 {
		e.interval = time.Second
	}
	n := cfg.MaxRemoteQueries
	if n <= 0 {
		n = 8
	}
	e.remote = make(chan struct{}, n)
	return e
}

// Run loads the alarms from the Repo, then evaluates them every Interval
// until ctx is done. It returns nil when ctx is done, after the evaluations
// it started have finished, or an error if the alarms cannot be loaded.
// Run must not be called twice at once.
func (e *Engine) Run(ctx context.Context) error {
	if e.repo != nil {
		alarms, err := e.repo.ListAlarms(ctx)
		if err != nil {
			return fmt.Errorf("alarm engine: list alarms: %w", err)
		}
		e.Reload(alarms)
	}
	t := e.clock.NewTicker(e.interval)
	defer t.Stop()
	defer e.wg.Wait()
	for {
		e.tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
		}
	}
}

// Reload replaces the set of alarms. The server calls it whenever alarm
// definitions change. An alarm the engine already has keeps its in-memory
// state even when its definition changed (as in CloudWatch, updating an
// alarm does not reset it), and is evaluated on the next tick. A new alarm
// takes its stored state, or starts in INSUFFICIENT_DATA with the reason
// "Unchecked: Initial alarm creation". An invalid definition (a record
// written by an older Kiln, or by hand) is not evaluated: the alarm goes to
// INSUFFICIENT_DATA with a StateReason that says why, and the others carry
// on.
func (e *Engine) Reload(alarms []kiln.Alarm) {
	now := e.clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	entries := make(map[string]*entry, len(alarms))
	list := make([]*entry, 0, len(alarms))
	for i := range alarms {
		name := alarms[i].AlarmName
		prev := entries[name]
		if prev == nil {
			prev = e.entries[name]
		}
		en := e.define(alarms[i], prev, now)
		if en == nil {
			continue
		}
		if entries[name] == nil {
			list = append(list, en)
		}
		entries[name] = en
	}
	e.entries, e.list = entries, list
}

// define returns the entry of def: prev (the alarm's entry so far, or
// nil) redefined if its definition changed, or a new entry. e.mu is held.
func (e *Engine) define(def kiln.Alarm, prev *entry, now time.Time) *entry {
	if def.AlarmName == "" {
		e.log.Warn("alarm skipped: it has no name")
		return nil
	}
	var fault *string
	if err := def.Validate(); err != nil {
		msg := "Kiln cannot evaluate this alarm: its definition is invalid: " + kiln.ErrorMessage(err)
		fault = &msg
	}
	st := def.AlarmState
	def.AlarmState = kiln.AlarmState{}
	if prev == nil {
		en := &entry{name: def.AlarmName, changed: true}
		if st.StateValue == "" {
			st = InitialState(now)
		}
		en.state.Store(&st)
		en.def.Store(&def)
		en.setFault(e.log, fault)
		return en
	}
	if old := prev.def.Load(); !reflect.DeepEqual(old, &def) {
		prev.def.Store(&def)
		prev.setFault(e.log, fault)
		prev.mu.Lock()
		prev.changed, prev.lastErr = true, ""
		prev.mu.Unlock()
	}
	return prev
}

// Put adds or redefines one alarm, as Reload does with the whole set: the
// server calls it for each alarm written, so that a state change (which
// writes the alarm's record) costs one alarm's work, not every alarm's.
func (e *Engine) Put(def kiln.Alarm) {
	now := e.clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	prev := e.entries[def.AlarmName]
	en := e.define(def, prev, now)
	if en == nil || prev != nil {
		return
	}
	e.entries[def.AlarmName] = en
	// list is replaced, never changed: tick reads it without the lock.
	e.list = append(e.list[:len(e.list):len(e.list)], en)
}

// Remove forgets an alarm.
func (e *Engine) Remove(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.entries[name] == nil {
		return
	}
	delete(e.entries, name)
	list := make([]*entry, 0, len(e.list))
	for _, en := range e.list {
		if en.name != name {
			list = append(list, en)
		}
	}
	e.list = list
}

// State returns an alarm's current state. It is cheap and safe for
// concurrent use.
func (e *Engine) State(name string) (kiln.AlarmState, bool) {
	e.mu.RLock()
	en := e.entries[name]
	e.mu.RUnlock()
	if en == nil {
		return kiln.AlarmState{}, false
	}
	return *en.state.Load(), true
}

// SetState sets an alarm's state, as SetAlarmState does: it holds until
// the alarm's next evaluation, which may change it back. The caller
// records the change and its history item (see StateUpdateItem); the engine
// only holds it in memory. Unknown alarms are ignored.
func (e *Engine) SetState(name string, st kiln.AlarmState) {
	e.mu.RLock()
	en := e.entries[name]
	e.mu.RUnlock()
	if en == nil {
		return
	}
	if st.StateUpdatedTimestamp.IsZero() {
		now := e.clock.Now()
		st.StateUpdatedTimestamp, st.StateTransitionedTimestamp = now, now
	}
	en.state.Store(&st)
	if e.onChange != nil {
		e.onChange(name, st)
	}
}

// EvaluateNow evaluates one alarm at once, whether or not it is due, and
// returns its state afterwards. A judge alarm is evaluated only when the
// engine has Judges.
func (e *Engine) EvaluateNow(ctx context.Context, name string) (kiln.AlarmState, error) {
	e.mu.RLock()
	en := e.entries[name]
	e.mu.RUnlock()
	if en == nil {
		return kiln.AlarmState{}, kiln.Errorf(kiln.ENOTFOUND, "Alarm %s does not exist.", name)
	}
	if f := en.fault.Load(); f != nil {
		e.markFault(ctx, en, *f, e.clock.Now())
		return *en.state.Load(), kiln.Errorf(kiln.EINVALID, "%s", *f)
	}
	var err error
	e.guard(ctx, en, func() { err = e.evaluateNow(ctx, en) })
	return *en.state.Load(), err
}

func (e *Engine) evaluateNow(ctx context.Context, en *entry) error {
	now := e.clock.Now()
	a := en.def.Load()
	switch {
	case a.AlarmRule != "":
		e.composite(ctx, en, a, now)
	case a.Judge != nil:
		if e.judges != nil {
			e.judge(ctx, en, a, now)
		}
	case a.Prometheus != nil:
		return e.evaluate(ctx, en, a, e.prometheus, now)
	default:
		return e.evaluate(ctx, en, a, e.local, now)
	}
	return nil
}

// tick evaluates the alarms that are due.
func (e *Engine) tick(ctx context.Context) {
	now := e.clock.Now()
	e.mu.RLock()
	list := e.list
	e.mu.RUnlock()
	for _, en := range list {
		if ctx.Err() != nil {
			break
		}
		if f := en.fault.Load(); f != nil {
			e.markFault(ctx, en, *f, now)
			continue
		}
		e.guard(ctx, en, func() { e.tickOne(ctx, en, now) })
	}
	// Composite alarms follow the states just evaluated; one that watches
	// another composite sees its new state on a further pass (a rule
	// cannot lead back to its own alarm, so the passes end).
	for pass := 0; pass <= len(list) && ctx.Err() == nil; pass++ {
		changed := false
		for _, en := range list {
			if a := en.def.Load(); a.AlarmRule != "" && en.fault.Load() == nil {
				e.guard(ctx, en, func() {
					if e.composite(ctx, en, a, now) {
						changed = true
					}
				})
			}
		}
		if !changed {
			break
		}
	}
	if e.tickDone != nil {
		e.tickDone()
	}
}

// tickOne evaluates one alarm if it is due; composite alarms are evaluated
// after the others.
func (e *Engine) tickOne(ctx context.Context, en *entry, now time.Time) {
	a := en.def.Load()
	switch {
	case a.AlarmRule != "":
		// Once the alarms they watch are evaluated.
	case a.Judge != nil:
		if e.judges != nil {
			e.judge(ctx, en, a, now)
		}
	case a.Prometheus != nil:
		if !en.busy.Load() && en.due(a, now) {
			e.startRemote(ctx, en, a, now)
		}
	default:
		if en.due(a, now) {
			_ = e.evaluate(ctx, en, a, e.local, now) // logged
		}
	}
}

// due reports whether the alarm is to be evaluated now, and if so notes
// that it is.
func (en *entry) due(a *kiln.Alarm, now time.Time) bool {
	_, end := Window(a, now)
	en.mu.Lock()
	defer en.mu.Unlock()
	if a.Period >= 60 && !en.changed && end.Equal(en.lastEnd) && now.Sub(en.lastEval) < time.Minute {
		return false
	}
	en.changed, en.lastEval, en.lastEnd = false, now, end
	return true
}

// startRemote evaluates a Prometheus alarm in the background, if a slot is
// free.
func (e *Engine) startRemote(ctx context.Context, en *entry, a *kiln.Alarm, now time.Time) {
	select {
	case e.remote <- struct{}{}:
	default:
		en.mu.Lock()
		en.changed = true // try again on the next tick
		en.mu.Unlock()
		return
	}
	en.busy.Store(true)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() { <-e.remote }()
		defer en.busy.Store(false)
		e.guard(ctx, en, func() {
			_ = e.evaluate(ctx, en, a, e.prometheus, now) // logged
		})
	}()
}

var errNoSource = errors.New("no metric source is configured for this alarm")

// evaluate evaluates a threshold alarm against src and applies the result.
func (e *Engine) evaluate(ctx context.Context, en *entry, a *kiln.Alarm, src Source, now time.Time) error {
	cur := en.state.Load()
	if src == nil {
		e.sourceError(en, errNoSource)
		return errNoSource
	}
	start, end := Window(a, now)
	points, err := src.Datapoints(ctx, a, start, end)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err = fmt.Errorf("alarm %s: datapoints: %w", en.name, err)
		e.sourceError(en, err)
		return err
	}
	e.sourceError(en, nil)
	if state(a, cur.StateValue, points, now) == cur.StateValue {
		e.retrySave(ctx, en)
		return nil
	}
	withState := *a
	withState.AlarmState = *cur
	e.apply(ctx, en, cur, Evaluate(&withState, points, now), now)
	return nil
}

// composite evaluates a composite alarm's rule on the current states of
// the alarms it names, applies the result, and reports whether the state
// changed.
func (e *Engine) composite(ctx context.Context, en *entry, a *kiln.Alarm, now time.Time) bool {
	rule, err := kiln.ParseAlarmRule(a.AlarmRule)
	if err != nil { // Reload admitted only valid rules
		e.sourceError(en, err)
		return false
	}
	cur := en.state.Load()
	states := map[string]string{}
	holds := rule.Eval(func(name string) (string, bool) {
		st, ok := e.State(name)
		if ok {
			states[name] = st.StateValue
		}
		return st.StateValue, ok
	})
	res := Result{State: kiln.StateOK, Reason: "AlarmRule evaluated to FALSE."}
	if holds {
		res = Result{State: kiln.StateAlarm, Reason: "AlarmRule evaluated to TRUE."}
	}
	type child struct{ Name, State string }
	var children []child
	for _, name := range rule.Children() {
		st, ok := states[name]
		if !ok {
			st = "(no such alarm)"
		}
		children = append(children, child{name, st})
	}
	data, _ := json.Marshal(struct{ Children []child }{children})
	res.ReasonData = string(data)
	if res.State == cur.StateValue {
		e.retrySave(ctx, en)
		return false
	}
	e.apply(ctx, en, cur, res, now)
	return true
}

// judge evaluates a judge alarm and applies the result.
func (e *Engine) judge(ctx context.Context, en *entry, a *kiln.Alarm, now time.Time) {
	cur := en.state.Load()
	withState := *a
	withState.AlarmState = *cur
	res, ok := e.judges.Judge(ctx, &withState)
	if !ok || res.State == cur.StateValue {
		e.retrySave(ctx, en)
		return
	}
	switch res.State {
	case kiln.StateOK, kiln.StateAlarm, kiln.StateInsufficientData:
	default:
		e.log.Error("judge returned an unknown state", "alarm", en.name, "state", res.State)
		return
	}
	e.apply(ctx, en, cur, res, now)
}

// apply makes res the alarm's state unless it is the current one or the
// state changed since cur was read (SetState won: it holds until the next
// evaluation), and records the change.
func (e *Engine) apply(ctx context.Context, en *entry, cur *kiln.AlarmState, res Result, now time.Time) {
	if res.State == cur.StateValue || res.State == "" {
		return
	}
	next := &kiln.AlarmState{
		StateValue:                 res.State,
		StateReason:                res.Reason,
		StateReasonData:            res.ReasonData,
		StateUpdatedTimestamp:      now,
		StateTransitionedTimestamp: now,
	}
	if !e.swap(ctx, en, cur, next) {
		return
	}
	if e.onChange != nil {
		e.onChange(en.name, *next)
	}
}

// swap makes next the alarm's state if it is still cur, and records the
// change. The lock is released by a deferred call, so that a panicking Repo
// cannot leave the alarm locked (see guard).
func (e *Engine) swap(ctx context.Context, en *entry, cur, next *kiln.AlarmState) bool {
	en.mu.Lock()
	defer en.mu.Unlock()
	if !en.state.CompareAndSwap(cur, next) {
		return false
	}
	e.save(ctx, en, *next, StateUpdateItem(en.name, *cur, *next))
	return true
}

// save records a state change; a failed save is retried on the alarm's
// next evaluation. en.mu is held.
func (e *Engine) save(ctx context.Context, en *entry, st kiln.AlarmState, hist kiln.AlarmHistoryItem) {
	if e.repo == nil {
		return
	}
	if err := e.repo.SaveState(ctx, en.name, st, hist); err != nil {
		if en.unsaved != nil {
			e.log.Warn("alarm history item lost", "alarm", en.name, "summary", en.unsaved.HistorySummary)
		}
		en.unsaved = &hist
		e.log.Error("save alarm state", "alarm", en.name, "state", st.StateValue, "error", err)
		return
	}
	en.unsaved = nil
}

// retrySave records the current state again if its save failed.
func (e *Engine) retrySave(ctx context.Context, en *entry) {
	en.mu.Lock()
	defer en.mu.Unlock()
	if en.unsaved == nil {
		return
	}
	hist := *en.unsaved
	en.unsaved = nil
	e.save(ctx, en, *en.state.Load(), hist)
}

// sourceError logs a source error when it first happens and when it is
// resolved, not on every tick. err is nil after a successful query.
func (e *Engine) sourceError(en *entry, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	en.mu.Lock()
	last := en.lastErr
	en.lastErr = msg
	en.mu.Unlock()
	switch {
	case msg == last:
	case msg == "":
		e.log.Info("alarm data points available again", "alarm", en.name)
	default:
		e.log.Warn("alarm not evaluated", "alarm", en.name, "error", err)
	}
}

// StateUpdateItem returns the history item CloudWatch writes for a state
// change: "Alarm updated from OK to ALARM", with both states in its data.
// Its time is the new state's StateUpdatedTimestamp.
func StateUpdateItem(name string, from, to kiln.AlarmState) kiln.AlarmHistoryItem {
	type stateJSON struct {
		StateValue      string          `json:"stateValue"`
		StateReason     string          `json:"stateReason"`
		StateReasonData json.RawMessage `json:"stateReasonData,omitempty"`
	}
	conv := func(s kiln.AlarmState) stateJSON {
		j := stateJSON{StateValue: s.StateValue, StateReason: s.StateReason}
		if json.Valid([]byte(s.StateReasonData)) {
			j.StateReasonData = json.RawMessage(s.StateReasonData)
		}
		return j
	}
	data, _ := json.Marshal(struct {
		Version  string    `json:"version"`
		OldState stateJSON `json:"oldState"`
		NewState stateJSON `json:"newState"`
	}{"1.0", conv(from), conv(to)}) // cannot fail: strings and valid raw JSON
	return kiln.AlarmHistoryItem{
		AlarmName:       name,
		Timestamp:       to.StateUpdatedTimestamp,
		HistoryItemType: "StateUpdate",
		HistorySummary:  fmt.Sprintf("Alarm updated from %s to %s", from.StateValue, to.StateValue),
		HistoryData:     string(data),
	}
}

package alarm

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
)

// Datapoint is the value of an alarm's statistic over one period.
type Datapoint struct {
	// Timestamp is the start of the period.
	Timestamp time.Time
	// Value is the statistic over the period. NaN counts as missing.
	Value float64
	// SampleCount is how many samples Value was computed from. Zero means
	// unknown, and the low-sample rule for percentiles does not apply.
	SampleCount float64
}

// Result is the outcome of one evaluation of an alarm.
//
// When the evaluation keeps the current state (TreatMissingData "ignore" with
// too little data, or a percentile over too few samples with
// EvaluateLowSampleCountPercentile "ignore"), State is the current state,
// Reason says why nothing changed and ReasonData is empty: nothing is to be
// recorded.
type Result struct {
	State  string
	Reason string
	// ReasonData is JSON shaped like CloudWatch's StateReasonData: version,
	// queryDate, startDate, statistic, period, recentDatapoints, threshold
	// and evaluatedDatapoints.
	ReasonData string
}

// ExtraPeriods is how far the evaluation range reaches back beyond
// EvaluationPeriods, in periods.
//
// CloudWatch always looks at more periods than EvaluationPeriods, so that a
// few missing data points can be made up from older ones, but it does not
// publish how many: it depends on the period and the metric's resolution. Its
// user guide's worked examples use a range of 5 for 3 evaluation periods.
// Kiln's rule is EvaluationPeriods + 2 periods for every alarm, which
// reproduces those examples exactly.
const ExtraPeriods = 2

// RangePeriods returns the length of a's evaluation range, in periods.
func RangePeriods(a *kiln.Alarm) int { return a.EvaluationPeriods + ExtraPeriods }

// Window returns a's evaluation range at now: RangePeriods(a) whole periods
// ending at the start of the current period. Periods are aligned to the Unix
// epoch, so a 60-second period starts on the minute. The current period is
// still filling up and is not evaluated; with 1-second periods the last
// complete second is the newest data point, so a breach is seen one to two
// seconds after it happens.
//
// A definition outside CloudWatch's limits (which Validate refuses) is
// clamped to them here, so that no user number overflows the arithmetic.
func Window(a *kiln.Alarm, now time.Time) (start, end time.Time) {
	p, n := bounds(a)
	sec := now.Unix()
	sec -= ((sec % p) + p) % p
	end = time.Unix(sec, 0).UTC()
	start = end.Add(-time.Duration(n+ExtraPeriods) * time.Duration(p) * time.Second)
	return start, end
}

// bounds returns a's period in seconds and its evaluation periods, clamped
// to the limits Validate enforces: at most 86400 seconds, and at most seven
// days of periods.
func bounds(a *kiln.Alarm) (period int64, n int64) {
	p := min(max(a.Period, 1), kiln.MaxPeriodSeconds)
	return int64(p), int64(min(max(a.EvaluationPeriods, 1), kiln.MaxEvaluationPeriods(p)))
}

// InitialState is the state of a newly created alarm.
func InitialState(now time.Time) kiln.AlarmState {
	return kiln.AlarmState{
		StateValue:                 kiln.StateInsufficientData,
		StateReason:                ReasonInitial,
		StateUpdatedTimestamp:      now,
		StateTransitionedTimestamp: now,
	}
}

// ReasonInitial is the state reason of a newly created alarm.
const ReasonInitial = "Unchecked: Initial alarm creation"

// MinSamples returns how many samples a data point of the given percentile
// (0 to 100) needs to be statistically significant, following CloudWatch:
// 10/(1-p) for p above 0.5 (1000 for p99, 10000 for p99.9) and 10/p for p
// from 0 to 0.5 (20 for p50, 100 for p10), rounded up. p0 and p100 are the
// minimum and the maximum, which any single sample determines, so they need 1.
func MinSamples(percentile float64) float64 {
	f := percentile / 100
	if f <= 0 || f >= 1 {
		return 1
	}
	var n float64
	if f > 0.5 {
		n = 10 / (1 - f)
	} else {
		n = 10 / f
	}
	// 1-0.99 is not exactly 0.01; round away the representation error
	// before rounding up, so that p99 needs 1000 samples and not 1001.
	return math.Ceil(n - 1e-6)
}

// Evaluate decides an alarm's state from the data points a source returned
// for its evaluation range at now (see Window), with CloudWatch's semantics.
// a.StateValue is the current state, which "ignore" keeps.
//
// N is EvaluationPeriods, M is DatapointsToAlarm (N when zero), and the range
// holds N+2 periods (see ExtraPeriods). A data point breaches when its value
// compares to the threshold as ComparisonOperator says (equality breaches for
// the OrEqualTo operators only).
//
//   - At least N real data points in the range: the latest N are evaluated
//     and missing ones in between do not matter. ALARM when M or more of
//     them breach, otherwise OK. TreatMissingData plays no part.
//   - Fewer than N real data points: every real one is evaluated and the
//     rest are filled as TreatMissingData says.
//     "breaching": filled points breach; ALARM when M or more breach.
//     "notBreaching": filled points do not breach; ALARM when M or more
//     real points breach.
//     "missing": nothing is filled. ALARM when M or more real points breach;
//     OK when any real point does not breach; INSUFFICIENT_DATA when the
//     range holds no data at all. Otherwise every real point breaches but
//     there are fewer than M, and CloudWatch avoids a premature ALARM: it
//     goes to ALARM only once the oldest breaching point is at least M
//     periods old (the newest period counts as 1), and stays
//     INSUFFICIENT_DATA until then, since a non-breaching point may still
//     arrive.
//     "ignore": as "missing", except that where "missing" would go to
//     INSUFFICIENT_DATA or to a premature ALARM the current state is kept.
//
// For a percentile statistic with EvaluateLowSampleCountPercentile "ignore",
// when any of the data points that would be evaluated has fewer samples than
// MinSamples, the state is kept; with "evaluate" (the default) the data
// points are evaluated whatever their sample counts.
func Evaluate(a *kiln.Alarm, points []Datapoint, now time.Time) Result {
	var buf [32]int32
	o := decide(a, a.StateValue, points, now, buf[:0])
	return o.result(a, points, now)
}

// What an outcome is based on.
const (
	kindThreshold = iota // the latest N real data points
	kindFilled           // all real points, the rest filled as breaching or not
	kindPartial          // all real points, fewer than N, nothing filled
	kindPremature        // breaching points, then missing ones: aged enough
	kindWaiting          // breaching points, then missing ones: too recent
	kindNoData           // no data point at all in the range
	kindLowSample        // percentile over too few samples
	kindInvalid          // the definition cannot be evaluated
)

// outcome is what decide found, with enough detail to explain it.
type outcome struct {
	state     string  // the new state; equal to the current one when kept
	kept      bool    // nothing is to be recorded
	kind      int     // one of the kind constants
	slots     []int32 // per period of the range, oldest first: index into points, or -1
	evaluated []int32 // indices into points of the real points evaluated, oldest first
	breaching int     // how many evaluated points breach, filled ones included
	filled    int     // how many missing points were filled
	oldest    int     // premature rule: age in periods of the oldest breaching point
	low       int     // low-sample rule: how many points had too few samples
	minSample float64 // low-sample rule: samples needed
	current   string  // the state before
}

// state decides only the state, without explaining it: the engine's fast
// path, which formats a reason only when the state changes.
func state(a *kiln.Alarm, current string, points []Datapoint, now time.Time) string {
	var buf [32]int32
	return decide(a, current, points, now, buf[:0]).state
}

// decide is Evaluate without the explanation. buf is scratch space for the
// period slots; it is used when large enough, so that the common case does
// not allocate.
func decide(a *kiln.Alarm, current string, points []Datapoint, now time.Time, buf []int32) outcome {
	if current == "" {
		current = kiln.StateInsufficientData
	}
	o := outcome{current: current}
	n, m := a.EvaluationPeriods, a.Datapoints()
	if n < 1 || m < 1 || m > n || a.Period < 1 || a.Period > kiln.MaxPeriodSeconds || n > kiln.MaxEvaluationPeriods(a.Period) {
		o.state, o.kept, o.kind = current, true, kindInvalid
		return o
	}
	op := operator(a.ComparisonOperator)
	r := n + ExtraPeriods

	// Place the data points in their periods; a later point for the same
	// period replaces an earlier one.
	var slots []int32
	if cap(buf) >= 2*r {
		slots = buf[:r]
	} else {
		slots = make([]int32, r, 2*r)
	}
	for i := range slots {
		slots[i] = -1
	}
	start, _ := Window(a, now)
	period := int64(a.Period) * int64(time.Second)
	real := 0
	for i := range points {
		if math.IsNaN(points[i].Value) {
			continue
		}
		d := int64(points[i].Timestamp.Sub(start))
		if d < 0 {
			continue
		}
		k := d / period
		if k >= int64(r) {
			continue
		}
		if slots[k] < 0 {
			real++
		}
		slots[k] = int32(i)
	}
	o.slots = slots

	// The evaluated real points: the latest N, or all of them.
	skip := max(real-n, 0)
	evaluated := slots[r:r]
	for _, s := range slots {
		if s < 0 {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		evaluated = append(evaluated, s)
	}
	o.evaluated = evaluated

	if a.EvaluateLowSampleCountPercentile == kiln.LowSampleIgnore && a.ExtendedStatistic != "" {
		if pct, ok := kiln.ParsePercentile(a.ExtendedStatistic); ok {
			o.minSample = MinSamples(pct)
			for _, i := range evaluated {
				if sc := points[i].SampleCount; sc > 0 && sc < o.minSample {
					o.low++
				}
			}
			if o.low > 0 {
				o.state, o.kept, o.kind = current, true, kindLowSample
				return o
			}
		}
	}

	nonBreaching := 0
	for _, i := range evaluated {
		if op.breaches(points[i].Value, a.Threshold) {
			o.breaching++
		} else {
			nonBreaching++
		}
	}
	verdict := func() string {
		if o.breaching >= m {
			return kiln.StateAlarm
		}
		return kiln.StateOK
	}

	if real >= n {
		o.state, o.kind = verdict(), kindThreshold
		return o
	}
	switch a.MissingData() {
	case kiln.MissingBreaching:
		o.filled = n - real
		o.breaching += o.filled
		o.state, o.kind = verdict(), kindFilled
		return o
	case kiln.MissingNotBreaching:
		o.filled = n - real
		o.state, o.kind = verdict(), kindFilled
		return o
	}

	// "missing" and "ignore".
	ignore := a.MissingData() == kiln.MissingIgnore
	switch {
	case real == 0:
		o.kind = kindNoData
		if ignore {
			o.state, o.kept = current, true
		} else {
			o.state = kiln.StateInsufficientData
		}
	case o.breaching >= m || nonBreaching > 0:
		o.state, o.kind = verdict(), kindPartial
	default:
		// Every real point breaches, but fewer than M of them.
		for i := range slots {
			if slots[i] >= 0 {
				o.oldest = r - i
				break
			}
		}
		switch {
		case ignore:
			o.state, o.kept, o.kind = current, true, kindWaiting
			if o.oldest >= m {
				o.kind = kindPremature
			}
		case o.oldest >= m:
			o.state, o.kind = kiln.StateAlarm, kindPremature
		default:
			o.state, o.kind = kiln.StateInsufficientData, kindWaiting
		}
	}
	return o
}

// countFrom returns how many slots from i on hold a data point.
func countFrom(slots []int32, i int) int {
	c := 0
	for _, s := range slots[i:] {
		if s >= 0 {
			c++
		}
	}
	return c
}

// result explains the outcome.
func (o *outcome) result(a *kiln.Alarm, points []Datapoint, now time.Time) Result {
	res := Result{State: o.state}
	n, m := a.EvaluationPeriods, a.Datapoints()
	op := operator(a.ComparisonOperator)
	thr := formatFloat(a.Threshold)
	r := len(o.slots)
	unknown := r - countFrom(o.slots, 0)

	switch o.kind {
	case kindInvalid:
		res.Reason = "Unchanged: the alarm definition cannot be evaluated."
		return res
	case kindLowSample:
		res.Reason = fmt.Sprintf("Unchanged: %s had fewer than %s samples, too few for %s, and EvaluateLowSampleCountPercentile is ignore.",
			count(o.low, "datapoint"), formatFloat(o.minSample), a.ExtendedStatistic)
		return res
	}
	if o.kept {
		if o.kind == kindNoData {
			res.Reason = fmt.Sprintf("Unchanged: %s %s unknown and TreatMissingData is ignore.", count(unknown, "datapoint"), wasWere(unknown))
		} else {
			res.Reason = fmt.Sprintf("Unchanged: %s [%s] %s %s the threshold (%s), %s %s unknown and TreatMissingData is ignore.",
				count(len(o.evaluated), "datapoint"), o.list(points, o.evaluated), wasWere(len(o.evaluated)), op.words(), thr,
				count(unknown, "datapoint"), wasWere(unknown))
		}
		return res
	}

	switch o.kind {
	case kindNoData:
		res.Reason = fmt.Sprintf("Insufficient Data: %s %s unknown.", count(unknown, "datapoint"), wasWere(unknown))
	case kindWaiting:
		res.Reason = fmt.Sprintf("Insufficient Data: %s [%s] %s %s the threshold (%s) and %s %s unknown; with missing data the oldest breaching datapoint must be %s old before ALARM.",
			count(len(o.evaluated), "datapoint"), o.list(points, o.evaluated), wasWere(len(o.evaluated)), op.words(), thr,
			count(unknown, "datapoint"), wasWere(unknown), count(m, "period"))
	case kindPremature:
		res.Reason = fmt.Sprintf("Threshold Crossed: %s [%s] %s %s the threshold (%s) and no datapoint was received since; the oldest is %s old (minimum %s for %s -> ALARM transition with missing data).",
			count(len(o.evaluated), "datapoint"), o.list(points, o.evaluated), wasWere(len(o.evaluated)), op.words(), thr,
			count(o.oldest, "period"), count(m, "period"), o.current)
	default:
		// ALARM or OK from the evaluated points.
		var shown []int32
		for _, i := range o.evaluated {
			if op.breaches(points[i].Value, a.Threshold) == (o.state == kiln.StateAlarm) {
				shown = append(shown, i)
			}
		}
		var b strings.Builder
		b.WriteString("Threshold Crossed: ")
		words := op.words()
		if o.state == kiln.StateOK {
			words = "not " + words
		}
		real := len(o.evaluated)
		switch {
		case real == 0:
			fmt.Fprintf(&b, "no datapoints were received for %s", count(r, "period"))
		case n == 1 && real == 1:
			fmt.Fprintf(&b, "1 datapoint [%s] was %s the threshold (%s)", o.list(points, shown), words, thr)
		case o.kind == kindPartial:
			k := len(shown)
			fmt.Fprintf(&b, "%d out of the %s received in the last %s [%s] %s %s the threshold (%s)",
				k, count(real, "datapoint"), count(r, "period"), o.list(points, shown), wasWere(k), words, thr)
		default:
			k := len(shown)
			fmt.Fprintf(&b, "%d out of the last %s [%s] %s %s the threshold (%s)",
				k, count(real, "datapoint"), o.list(points, shown), wasWere(k), words, thr)
		}
		if o.filled > 0 {
			as := "NotBreaching"
			if a.MissingData() == kiln.MissingBreaching {
				as = "Breaching"
			}
			fmt.Fprintf(&b, " and %s %s treated as [%s]", count(o.filled, "missing datapoint"), wasWere(o.filled), as)
		}
		if n > 1 && o.current != o.state {
			need := m
			if o.state == kiln.StateOK {
				need = n - m + 1
			}
			fmt.Fprintf(&b, " (minimum %s for %s -> %s transition)", count(need, "datapoint"), o.current, o.state)
		}
		b.WriteString(".")
		res.Reason = b.String()
	}
	res.ReasonData = o.reasonData(a, points, now)
	return res
}

// list formats data points as CloudWatch does in reasons: value (dd/mm/yy
// hh:mm:ss), newest first.
func (o *outcome) list(points []Datapoint, idx []int32) string {
	var b strings.Builder
	for j := len(idx) - 1; j >= 0; j-- {
		p := points[idx[j]]
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", formatFloat(p.Value), p.Timestamp.UTC().Format("02/01/06 15:04:05"))
	}
	return b.String()
}

// reasonData is CloudWatch's StateReasonData for threshold alarms.
type reasonData struct {
	Version             string        `json:"version"`
	QueryDate           string        `json:"queryDate"`
	StartDate           string        `json:"startDate"`
	Statistic           string        `json:"statistic,omitempty"`
	Unit                string        `json:"unit,omitempty"`
	Period              int           `json:"period"`
	RecentDatapoints    []jsonFloat   `json:"recentDatapoints"`
	Threshold           jsonFloat     `json:"threshold"`
	EvaluatedDatapoints []evaluatedDP `json:"evaluatedDatapoints,omitempty"`
}

type evaluatedDP struct {
	Timestamp   string     `json:"timestamp"`
	SampleCount *jsonFloat `json:"sampleCount,omitempty"`
	Value       jsonFloat  `json:"value"`
}

// CloudWatch's timestamp format in reason data.
const reasonTime = "2006-01-02T15:04:05.000-0700"

func (o *outcome) reasonData(a *kiln.Alarm, points []Datapoint, now time.Time) string {
	start, _ := Window(a, now)
	d := reasonData{
		Version:          "1.0",
		QueryDate:        now.UTC().Format(reasonTime),
		StartDate:        start.Format(reasonTime),
		Statistic:        a.Stat(),
		Unit:             a.Unit,
		Period:           a.Period,
		RecentDatapoints: []jsonFloat{},
		Threshold:        jsonFloat(a.Threshold),
	}
	if len(o.evaluated) > 0 {
		d.StartDate = points[o.evaluated[0]].Timestamp.UTC().Format(reasonTime)
	}
	for _, i := range o.evaluated {
		d.RecentDatapoints = append(d.RecentDatapoints, jsonFloat(points[i].Value))
	}
	for j := len(o.evaluated) - 1; j >= 0; j-- {
		p := points[o.evaluated[j]]
		e := evaluatedDP{Timestamp: p.Timestamp.UTC().Format(reasonTime), Value: jsonFloat(p.Value)}
		if p.SampleCount > 0 {
			sc := jsonFloat(p.SampleCount)
			e.SampleCount = &sc
		}
		d.EvaluatedDatapoints = append(d.EvaluatedDatapoints, e)
	}
	js, err := json.Marshal(d)
	if err != nil {
		// Only non-finite floats could fail, and jsonFloat encodes those.
		return ""
	}
	return string(js)
}

// jsonFloat encodes like CloudWatch (84.0, not 84); infinities, which JSON
// has no number for, become strings.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return []byte(strconv.Quote(strconv.FormatFloat(v, 'g', -1, 64))), nil
	}
	return []byte(formatFloat(v)), nil
}

// formatFloat writes a number as CloudWatch's reasons do: always with a
// decimal point.
func formatFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func wasWere(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

// operator is a ComparisonOperator.
type operator string

func (op operator) breaches(v, threshold float64) bool {
	switch op {
	case kiln.GreaterThanOrEqualToThreshold:
		return v >= threshold
	case kiln.GreaterThanThreshold:
		return v > threshold
	case kiln.LessThanThreshold:
		return v < threshold
	case kiln.LessThanOrEqualToThreshold:
		return v <= threshold
	}
	return false
}

func (op operator) words() string {
	switch op {
	case kiln.GreaterThanOrEqualToThreshold:
		return "greater than or equal to"
	case kiln.GreaterThanThreshold:
		return "greater than"
	case kiln.LessThanThreshold:
		return "less than"
	case kiln.LessThanOrEqualToThreshold:
		return "less than or equal to"
	}
	return string(op)
}

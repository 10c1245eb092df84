package judge

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/alarm"
)

// Verdicts as StateReasonData names them.
const (
	verdictWorse        = "worse"            // ALARM
	verdictNotWorse     = "notWorse"         // OK, and shown not worse beyond the tolerance
	verdictNoEvidence   = "noEvidence"       // OK: enough requests, no evidence either way
	verdictInsufficient = "insufficientData" // INSUFFICIENT_DATA
)

// verdict decides an alarm's state from the evidence. When the state is
// current, the alarm's state now, the result carries no reason.
//
// ALARM once the e-value against "the new fleet is not worse" has reached
// 1/α: for both metrics it is the mean of the errors and latency e-values,
// and the latency e-value is the mean of its levels', so that one bound α
// covers every test (a mean of e-processes is an e-process). It stays in
// ALARM until the evidence is reset, since a test that has rejected has
// rejected for good. OK once each fleet answered MinRequests requests side
// by side, INSUFFICIENT_DATA before.
//
// Early promotion needs the reverse: every test judged (errors, and each
// latency level) must have rejected "the new fleet is worse beyond the
// tolerance" at level α. If the new fleet is worse in any one respect, that
// test rejects with probability at most α, so no correction is needed.
func (ev *evidence) verdict(spec *kiln.JudgeSpec, current string, now time.Time) (alarm.Result, Verdict) {
	alpha := spec.AlphaOrDefault()
	bar := math.Log(1 / alpha)
	onErrors, onLatency := spec.Judges(kiln.JudgeErrors), spec.Judges(kiln.JudgeLatency)
	t := &ev.t

	var cur, top float64
	switch {
	case onErrors && onLatency:
		cur, top = logMean2(t.errors.LogWorse(), t.logLatency()), t.maxBoth
	case onErrors:
		cur, top = t.errors.LogWorse(), t.errors.MaxLogWorse()
	default:
		cur, top = t.logLatency(), t.maxLatency
	}
	promoted := true
	if onErrors {
		promoted = promoted && t.errors.MaxLogNotWorse() >= bar
	}
	if onLatency {
		for l := range t.latency {
			promoted = promoted && t.latency[l].MaxLogNotWorse() >= bar
		}
	}
	minReq := int64(spec.MinRequestsOrDefault())
	enough := ev.green.requests >= minReq && ev.blue.requests >= minReq

	v := Verdict{}
	kind := verdictInsufficient
	switch {
	case top >= bar:
		v.State, kind = kiln.StateAlarm, verdictWorse
	case enough && promoted:
		v.State, kind = kiln.StateOK, verdictNotWorse
		v.Promote = spec.EarlyPromotion
	case enough:
		v.State, kind = kiln.StateOK, verdictNoEvidence
	default:
		v.State = kiln.StateInsufficientData
		v.Wait = spec.Waits()
	}

	if v.State == current {
		// The engine records nothing when the state stays: skip the
		// explanation, as alarm.Evaluate's fast path does.
		return alarm.Result{State: v.State}, v
	}
	var b strings.Builder
	ep := strconv.Quote(ev.endpoint)
	side := fmt.Sprintf("%s and %s requests reached the new and old fleets side by side since %s",
		group(ev.green.requests), group(ev.blue.requests), ev.since.UTC().Format(time.RFC3339))
	switch kind {
	case verdictWorse:
		fmt.Fprintf(&b, "Judge: the new fleet of endpoint %s is worse than the old one (e-value reached %s ≥ 1/α = %s); %s.",
			ep, evalue(top), formatG(1/alpha), side)
	case verdictInsufficient:
		fmt.Fprintf(&b, "Judge: insufficient data: %s; a verdict needs %s of each. No evidence of a regression so far (e-value %s < 1/α = %s).",
			side, group(minReq), evalue(cur), formatG(1/alpha))
	default:
		fmt.Fprintf(&b, "Judge: no evidence that the new fleet of endpoint %s is worse than the old one (e-value %s < 1/α = %s); %s.",
			ep, evalue(cur), formatG(1/alpha), side)
	}
	if onErrors {
		b.WriteString(" " + ev.errorsText())
	}
	if onLatency {
		b.WriteString(" " + ev.latencyText())
	}
	if kind == verdictNotWorse {
		fmt.Fprintf(&b, " The new fleet is not worse beyond the tolerance of %s in any metric judged (each test reached 1/α)", percent(t.tolerance))
		if spec.EarlyPromotion {
			b.WriteString(": the bake may end early.")
		} else {
			b.WriteString("; EarlyPromotion is off.")
		}
	}
	res := alarm.Result{State: v.State, Reason: b.String(), ReasonData: ev.reasonData(spec, now, kind, cur, top, onErrors, onLatency)}
	return res, v
}

func (ev *evidence) errorsText() string {
	t := &ev.t.errors
	s := fmt.Sprintf("Errors: new fleet %s of %s (%s), old fleet %s of %s (%s)",
		group(ev.green.errors), group(ev.green.requests), rate(ev.green.errors, ev.green.requests),
		group(ev.blue.errors), group(ev.blue.requests), rate(ev.blue.errors, ev.blue.requests))
	if r := t.RateRatio(); !math.IsNaN(r) {
		s += fmt.Sprintf("; rate ratio ≈ %s", formatG(r))
	}
	return s + fmt.Sprintf(" (tolerated: up to %s); e-value %s.", formatG(1+ev.t.tolerance), evalue(t.LogWorse()))
}

func (ev *evidence) latencyText() string {
	var qs, th, got, want []string
	for l, q := range levels {
		qs = append(qs, "p"+formatG(q*100))
		if ev.thresholds[l] == 0 {
			th = append(th, "-")
		} else {
			th = append(th, ev.thresholds[l].Round(10*time.Microsecond).String())
		}
		_, g := ev.t.latency[l].Events()
		got = append(got, group(g))
		want = append(want, group(int64(math.Round(ev.t.latency[l].ExpectedGreen()))))
	}
	return fmt.Sprintf("Latency: requests slower than the old fleet's %s (%s), the new fleet's latencies divided by %s: %s from the new fleet where %s were expected if it were as fast; e-value %s.",
		strings.Join(qs, "/"), strings.Join(th, "/"), formatG(ev.t.scale),
		strings.Join(got, "/"), strings.Join(want, "/"), evalue(ev.t.logLatency()))
}

// reasonData is the judge's StateReasonData.
type reasonData struct {
	Version     string       `json:"version"`
	QueryDate   string       `json:"queryDate"`
	Since       string       `json:"since"`
	Endpoint    string       `json:"endpoint"`
	Alpha       float64      `json:"alpha"`
	Tolerance   float64      `json:"tolerance"`
	MinRequests int64        `json:"minRequests"`
	Verdict     string       `json:"verdict"`
	EValue      number       `json:"eValue"`
	MaxEValue   number       `json:"maxEValue"`
	NewFleet    fleetData    `json:"newFleet"`
	OldFleet    fleetData    `json:"oldFleet"`
	Fleets      []fleetEntry `json:"fleets,omitempty"`
	Errors      *originData  `json:"errors,omitempty"`
	Latency     *latencyData `json:"latency,omitempty"`
}

type fleetData struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
}

// fleetEntry is one fleet's requests since the reset, whether or not they
// were compared.
type fleetEntry struct {
	ID       string `json:"id"`
	New      bool   `json:"new"`
	Requests int64  `json:"requests"`
	Errors   int64  `json:"errors"`
}

type originData struct {
	Quantile              float64 `json:"quantile,omitempty"`
	ThresholdMicroseconds float64 `json:"thresholdMicroseconds,omitempty"`
	Events                int64   `json:"events"`
	FromNewFleet          int64   `json:"fromNewFleet"`
	ExpectedFromNewFleet  number  `json:"expectedFromNewFleet"`
	RateRatio             *number `json:"rateRatio,omitempty"`
	EValue                number  `json:"eValue"`
	EValueNotWorse        number  `json:"eValueNotWorse"`
	MaxEValueNotWorse     number  `json:"maxEValueNotWorse"`
}

type latencyData struct {
	EValue number       `json:"eValue"`
	Levels []originData `json:"levels"`
}

const reasonTime = "2006-01-02T15:04:05.000-0700"

func (ev *evidence) reasonData(spec *kiln.JudgeSpec, now time.Time, kind string, cur, top float64, onErrors, onLatency bool) string {
	d := reasonData{
		Version: "1.0", QueryDate: now.UTC().Format(reasonTime), Since: ev.since.UTC().Format(reasonTime),
		Endpoint: ev.endpoint, Alpha: spec.AlphaOrDefault(), Tolerance: ev.t.tolerance,
		MinRequests: int64(spec.MinRequestsOrDefault()), Verdict: kind,
		EValue: expNumber(cur), MaxEValue: expNumber(top),
		NewFleet: fleetData{ev.green.requests, ev.green.errors}, OldFleet: fleetData{ev.blue.requests, ev.blue.errors},
	}
	for _, f := range ev.fleets {
		d.Fleets = append(d.Fleets, fleetEntry{ID: f.id, New: f.green, Requests: f.requests, Errors: f.errors})
	}
	origin := func(t *OriginTest) originData {
		n, g := t.Events()
		o := originData{Events: n, FromNewFleet: g, ExpectedFromNewFleet: number(t.ExpectedGreen()),
			EValue: expNumber(t.LogWorse()), EValueNotWorse: expNumber(t.LogNotWorse()), MaxEValueNotWorse: expNumber(t.MaxLogNotWorse())}
		if r := t.RateRatio(); !math.IsNaN(r) {
			rn := number(r)
			o.RateRatio = &rn
		}
		return o
	}
	if onErrors {
		o := origin(&ev.t.errors)
		d.Errors = &o
	}
	if onLatency {
		ld := &latencyData{EValue: expNumber(ev.t.logLatency())}
		for l, q := range levels {
			o := origin(&ev.t.latency[l])
			o.Quantile = q
			o.ThresholdMicroseconds = float64(ev.thresholds[l]) / float64(time.Microsecond)
			ld.Levels = append(ld.Levels, o)
		}
		d.Latency = ld
	}
	js, err := json.Marshal(d)
	if err != nil {
		return "" // number encodes every float; cannot happen
	}
	return string(js)
}

// number is a float that encodes in JSON whatever its value: non-finite
// values, which JSON has no number for, become the largest finite one.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	v := float64(n)
	switch {
	case math.IsNaN(v):
		return []byte("null"), nil
	case math.IsInf(v, 1):
		v = math.MaxFloat64
	case math.IsInf(v, -1):
		v = -math.MaxFloat64
	}
	return strconv.AppendFloat(nil, v, 'g', 6, 64), nil
}

// expNumber is e^x as a number (huge e-values become the largest float).
func expNumber(x float64) number { return number(math.Exp(x)) }

// evalue formats e^x for people.
func evalue(x float64) string {
	if x > 700 {
		return fmt.Sprintf("1e%.0f", x/math.Ln10)
	}
	return formatG(math.Exp(x))
}

func formatG(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

func percent(v float64) string { return strconv.FormatFloat(v*100, 'g', 4, 64) + "%" }

func rate(n, of int64) string {
	if of == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(n)/float64(of), 'g', 3, 64) + "%"
}

// group writes a count with thousands separators: 12,345.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 || len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

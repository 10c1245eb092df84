package alarm

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-serve/kiln"
)

// evalNow is an instant in the middle of a 5-minute period, as in the user
// guide's examples.
var evalNow = time.Date(2024, 5, 1, 12, 2, 30, 0, time.UTC)

// thresholdAlarm is Maximum > 1 over Period-second periods, M of N.
func thresholdAlarm(period, n, m int, missing string) *kiln.Alarm {
	return &kiln.Alarm{
		AlarmName:          "a",
		Namespace:          "AWS/SageMaker",
		MetricName:         "ModelLatency",
		Statistic:          "Maximum",
		Period:             period,
		EvaluationPeriods:  n,
		DatapointsToAlarm:  m,
		Threshold:          1,
		ComparisonOperator: kiln.GreaterThanThreshold,
		TreatMissingData:   missing,
	}
}

// pattern turns the user guide's notation into data points for a's
// evaluation range at now: one symbol per period, oldest first, separated by
// spaces; 0 is a non-breaching value, X a breaching one, - a missing one.
func pattern(t *testing.T, a *kiln.Alarm, now time.Time, p string) []Datapoint {
	t.Helper()
	syms := strings.Fields(p)
	if len(syms) != RangePeriods(a) {
		t.Fatalf("pattern %q has %d periods, the evaluation range has %d", p, len(syms), RangePeriods(a))
	}
	start, _ := Window(a, now)
	var pts []Datapoint
	for i, s := range syms {
		ts := start.Add(time.Duration(i*a.Period) * time.Second)
		switch s {
		case "0":
			pts = append(pts, Datapoint{Timestamp: ts, Value: 0, SampleCount: 1})
		case "X":
			pts = append(pts, Datapoint{Timestamp: ts, Value: 5, SampleCount: 1})
		case "-":
		default:
			t.Fatalf("pattern %q: unknown symbol %q", p, s)
		}
	}
	return pts
}

// retain marks "Retain current state" in the tables.
const retain = "retain"

var allStates = []string{kiln.StateOK, kiln.StateAlarm, kiln.StateInsufficientData}

type missingRow struct {
	points                                   string
	missing, ignore, breaching, notBreaching string
}

// runMissingTable checks each row under each TreatMissingData setting,
// starting from each possible current state, with N = 3 and a 5-minute
// period as in the user guide.
func runMissingTable(t *testing.T, m int, rows []missingRow) {
	for _, row := range rows {
		for _, c := range []struct{ treat, want string }{
			{kiln.MissingMissing, row.missing},
			{kiln.MissingIgnore, row.ignore},
			{kiln.MissingBreaching, row.breaching},
			{kiln.MissingNotBreaching, row.notBreaching},
		} {
			t.Run(row.points+"/"+c.treat, func(t *testing.T) {
				for _, cur := range allStates {
					a := thresholdAlarm(300, 3, m, c.treat)
					a.StateValue = cur
					a.StateReason = "before"
					got := Evaluate(a, pattern(t, a, evalNow, row.points), evalNow)
					want := c.want
					if want == retain {
						want = cur
						if got.Reason == "before" || got.ReasonData != "" {
							t.Errorf("from %s: kept state has reason %q and reason data %q; want an explanation and no data", cur, got.Reason, got.ReasonData)
						}
					}
					if got.State != want {
						t.Errorf("from %s: got %s (%s), want %s", cur, got.State, got.Reason, want)
					}
				}
			})
		}
	}
}

// The first table of "Configuring how CloudWatch alarms treat missing
// data": Datapoints to Alarm and Evaluation Periods are both 3, and the
// evaluation range is 5.
func TestMissingDataTableThreeOfThree(t *testing.T) {
	runMissingTable(t, 3, []missingRow{
		// The rows of the current edition of the page.
		{"0 - X - X", "OK", "OK", "OK", "OK"},
		{"0 - - - -", "OK", "OK", "OK", "OK"},
		{"- - - - -", "INSUFFICIENT_DATA", retain, "ALARM", "OK"},
		{"0 X X - X", "ALARM", "ALARM", "ALARM", "ALARM"},
		{"- - X - -", "ALARM", retain, "ALARM", "OK"},
		// Rows an earlier edition of the same table had.
		{"- - - - X", "INSUFFICIENT_DATA", retain, "ALARM", "OK"},
		{"X - - - -", "ALARM", retain, "ALARM", "OK"},
	})
}

// The second table: a 2 out of 3 alarm, evaluation range 5.
func TestMissingDataTableTwoOfThree(t *testing.T) {
	runMissingTable(t, 2, []missingRow{
		// The rows of the current edition of the page.
		{"0 - X - X", "ALARM", "ALARM", "ALARM", "ALARM"},
		{"0 0 X 0 X", "ALARM", "ALARM", "ALARM", "ALARM"},
		{"0 - X - -", "OK", "OK", "ALARM", "OK"},
		{"- - - - 0", "OK", "OK", "ALARM", "OK"},
		{"- - - X -", "ALARM", retain, "ALARM", "OK"},
		// A row an earlier edition of the same table had.
		{"- - - - X", "INSUFFICIENT_DATA", retain, "ALARM", "OK"},
	})
}

// The page's section "Avoiding premature transitions to alarm state"
// describes more 3 out of 3 patterns in prose: - - - - X and - - - X - do
// not go to ALARM at once, and - - - X 0 and - - X - 0 are the non-breaching
// follow-ups that this avoids false alarms for. The "missing" and "ignore"
// states are what the page says; the "breaching" and "notBreaching" ones
// follow from its filling rule (all real points plus filled ones, N in all).
func TestMissingDataPrematureAlarmProse(t *testing.T) {
	runMissingTable(t, 3, []missingRow{
		{"- - - X -", "INSUFFICIENT_DATA", retain, "ALARM", "OK"},
		{"- - - X 0", "OK", "OK", "OK", "OK"},
		{"- - X - 0", "OK", "OK", "OK", "OK"},
	})
}

func TestMOfN(t *testing.T) {
	for _, c := range []struct {
		name    string
		n, m    int
		missing string
		points  string
		want    string
	}{
		{"3 of 5 consecutive", 5, 3, "", "0 0 X X X 0 0", "ALARM"},
		{"3 of 5 not consecutive", 5, 3, "", "0 0 X 0 X 0 X", "ALARM"},
		{"2 of 5 breaching is OK", 5, 3, "", "0 0 0 X 0 0 X", "OK"},
		{"old breaches fall out of the latest 5", 5, 3, "", "X X 0 X 0 0 X", "OK"},
		{"missing points in between: the latest 5 real ones", 5, 3, "", "X X X - - 0 0", "ALARM"},
		{"missing points in between do not need filling", 5, 3, kiln.MissingBreaching, "0 0 0 - - 0 0", "OK"},
		{"5 of 5", 5, 5, "", "0 0 X X X X X", "ALARM"},
		{"4 of 5 is not 5 of 5", 5, 5, "", "X X X X X 0 X", "OK"},
		{"1 of 1 breaching", 1, 1, "", "0 0 X", "ALARM"},
		{"1 of 1 recovered", 1, 1, "", "X X 0", "OK"},
		{"1 of 1 uses the newest real point", 1, 1, "", "X 0 -", "OK"},
		{"DatapointsToAlarm defaults to N", 3, 0, "", "0 0 X X X", "ALARM"},
		{"DatapointsToAlarm defaults to N, 2 of 3 is OK", 3, 0, "", "X X 0 X X", "OK"},
		{"1 of 3 fewer real than N, missing", 3, 1, "", "- - 0 X -", "ALARM"},
		{"notBreaching fills towards OK", 5, 3, kiln.MissingNotBreaching, "- - X - X - -", "OK"},
		{"breaching fills towards ALARM", 5, 3, kiln.MissingBreaching, "- - 0 - 0 0 -", "OK"},
		{"breaching fills two", 5, 3, kiln.MissingBreaching, "- - 0 - 0 X -", "ALARM"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := thresholdAlarm(60, c.n, c.m, c.missing)
			got := Evaluate(a, pattern(t, a, evalNow, c.points), evalNow)
			if got.State != c.want {
				t.Errorf("got %s (%s), want %s", got.State, got.Reason, c.want)
			}
		})
	}
}

func TestOperators(t *testing.T) {
	for _, c := range []struct {
		op               string
		below, at, above bool // does 9, 10, 11 breach a threshold of 10
	}{
		{kiln.GreaterThanOrEqualToThreshold, false, true, true},
		{kiln.GreaterThanThreshold, false, false, true},
		{kiln.LessThanThreshold, true, false, false},
		{kiln.LessThanOrEqualToThreshold, true, true, false},
	} {
		for _, v := range []struct {
			value  float64
			breach bool
		}{{9, c.below}, {10, c.at}, {11, c.above}, {-1e300, c.below}, {math.Inf(1), c.above}} {
			a := thresholdAlarm(1, 1, 1, "")
			a.ComparisonOperator = c.op
			a.Threshold = 10
			start, end := Window(a, evalNow)
			pts := []Datapoint{{Timestamp: start, Value: 0}, {Timestamp: end.Add(-time.Second), Value: v.value}}
			want := kiln.StateOK
			if v.breach {
				want = kiln.StateAlarm
			}
			if got := Evaluate(a, pts, evalNow); got.State != want {
				t.Errorf("%s with %v against 10: got %s (%s), want %s", c.op, v.value, got.State, got.Reason, want)
			}
		}
	}
}

func TestMinSamples(t *testing.T) {
	for _, c := range []struct {
		p    float64
		want float64
	}{
		{99, 1000}, {99.9, 10000}, {99.99, 100000}, {95, 200}, {90, 100}, {75, 40},
		{50, 20}, {10, 100}, {1, 1000}, {100, 1}, {0, 1},
	} {
		if got := MinSamples(c.p); got != c.want {
			t.Errorf("MinSamples(%v) = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestLowSampleCountPercentile(t *testing.T) {
	percentile := func(stat, mode string) *kiln.Alarm {
		a := thresholdAlarm(60, 3, 2, "")
		a.Statistic = ""
		a.ExtendedStatistic = stat
		a.EvaluateLowSampleCountPercentile = mode
		return a
	}
	// points builds a breaching range whose newest point has the given
	// sample count; the others have plenty.
	points := func(a *kiln.Alarm, newest float64) []Datapoint {
		start, _ := Window(a, evalNow)
		var pts []Datapoint
		for i := range RangePeriods(a) {
			sc := 1e6
			if i == RangePeriods(a)-1 {
				sc = newest
			}
			pts = append(pts, Datapoint{Timestamp: start.Add(time.Duration(i) * time.Minute), Value: 5, SampleCount: sc})
		}
		return pts
	}
	for _, c := range []struct {
		name   string
		stat   string
		mode   string
		newest float64
		kept   bool
	}{
		{"p99 ignore 999 samples", "p99", kiln.LowSampleIgnore, 999, true},
		{"p99 ignore 1000 samples", "p99", kiln.LowSampleIgnore, 1000, false},
		{"p99.9 ignore 9999 samples", "p99.9", kiln.LowSampleIgnore, 9999, true},
		{"p99.9 ignore 10000 samples", "p99.9", kiln.LowSampleIgnore, 10000, false},
		{"p50 ignore 19 samples", "p50", kiln.LowSampleIgnore, 19, true},
		{"p50 ignore 20 samples", "p50", kiln.LowSampleIgnore, 20, false},
		{"p10 ignore 99 samples", "p10", kiln.LowSampleIgnore, 99, true},
		{"p10 ignore 100 samples", "p10", kiln.LowSampleIgnore, 100, false},
		{"p100 ignore 1 sample", "p100", kiln.LowSampleIgnore, 1, false},
		{"p99 evaluate 1 sample", "p99", kiln.LowSampleEvaluate, 1, false},
		{"p99 default evaluates 1 sample", "p99", "", 1, false},
		{"p99 ignore unknown sample count", "p99", kiln.LowSampleIgnore, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, cur := range allStates {
				a := percentile(c.stat, c.mode)
				a.StateValue = cur
				got := Evaluate(a, points(a, c.newest), evalNow)
				want := kiln.StateAlarm
				if c.kept {
					want = cur
				}
				if got.State != want {
					t.Errorf("from %s: got %s (%s), want %s", cur, got.State, got.Reason, want)
				}
				if c.kept && (got.ReasonData != "" || !strings.Contains(got.Reason, "samples")) {
					t.Errorf("from %s: kept with reason %q, data %q", cur, got.Reason, got.ReasonData)
				}
			}
		})
	}

	// A low-sample point that is not among the latest N real points does
	// not hold the evaluation back.
	a := percentile("p99", kiln.LowSampleIgnore)
	pts := points(a, 5000)
	pts[0].SampleCount = 3
	if got := Evaluate(a, pts, evalNow); got.State != kiln.StateAlarm {
		t.Errorf("low-sample point outside the latest N: got %s (%s), want ALARM", got.State, got.Reason)
	}
}

func TestWindow(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 30, 500e6, time.UTC)
	for _, c := range []struct {
		period, n  int
		start, end string
	}{
		{1, 1, "12:00:27", "12:00:30"},
		{1, 5, "12:00:23", "12:00:30"},
		{60, 3, "11:55:00", "12:00:00"},
		{300, 3, "11:35:00", "12:00:00"},
		{7, 1, "12:00:03", "12:00:24"}, // 1714564824 (12:00:24) is a multiple of 7
	} {
		a := thresholdAlarm(c.period, c.n, c.n, "")
		start, end := Window(a, now)
		if got, want := start.Format("15:04:05"), c.start; got != want {
			t.Errorf("period %d, N %d: start %s, want %s", c.period, c.n, got, want)
		}
		if got, want := end.Format("15:04:05"), c.end; got != want {
			t.Errorf("period %d, N %d: end %s, want %s", c.period, c.n, got, want)
		}
	}
}

func TestEvaluateIgnoresNaNAndOutOfRange(t *testing.T) {
	a := thresholdAlarm(60, 1, 1, "")
	start, end := Window(a, evalNow)
	pts := []Datapoint{
		{Timestamp: end.Add(-time.Minute), Value: math.NaN()}, // missing
		{Timestamp: end, Value: 5},                            // the current period
		{Timestamp: start.Add(-time.Minute), Value: 5},        // before the range
		{Timestamp: start, Value: 0},
	}
	got := Evaluate(a, pts, evalNow)
	if got.State != kiln.StateOK {
		t.Errorf("got %s (%s), want OK from the one point in range", got.State, got.Reason)
	}
	// A later point for the same period replaces an earlier one.
	pts = append(pts, Datapoint{Timestamp: start.Add(time.Second), Value: 5})
	if got := Evaluate(a, pts, evalNow); got.State != kiln.StateAlarm {
		t.Errorf("got %s (%s), want ALARM from the replacing point", got.State, got.Reason)
	}
}

func TestEvaluateInvalidKeepsState(t *testing.T) {
	a := thresholdAlarm(0, 1, 1, "")
	a.StateValue = kiln.StateOK
	if got := Evaluate(a, nil, evalNow); got.State != kiln.StateOK || got.ReasonData != "" {
		t.Errorf("got %+v, want OK kept", got)
	}
}

func TestReason(t *testing.T) {
	a := thresholdAlarm(60, 1, 1, "")
	a.StateValue = kiln.StateOK
	start, end := Window(a, evalNow)
	last := end.Add(-time.Minute)
	got := Evaluate(a, []Datapoint{{Timestamp: start, Value: 0, SampleCount: 2}, {Timestamp: last, Value: 5, SampleCount: 3}}, evalNow)
	if want := "Threshold Crossed: 1 datapoint [5.0 (01/05/24 12:01:00)] was greater than the threshold (1.0)."; got.Reason != want {
		t.Errorf("reason %q, want %q", got.Reason, want)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(got.ReasonData), &data); err != nil {
		t.Fatalf("reason data %q: %v", got.ReasonData, err)
	}
	want := map[string]any{
		"version":          "1.0",
		"queryDate":        "2024-05-01T12:02:30.000+0000",
		"startDate":        "2024-05-01T12:01:00.000+0000",
		"statistic":        "Maximum",
		"period":           60.0,
		"recentDatapoints": []any{5.0},
		"threshold":        1.0,
		"evaluatedDatapoints": []any{map[string]any{
			"timestamp": "2024-05-01T12:01:00.000+0000", "sampleCount": 3.0, "value": 5.0,
		}},
	}
	if diff := cmp.Diff(want, data); diff != "" {
		t.Errorf("reason data (-want +got):\n%s", diff)
	}
	if !strings.Contains(got.ReasonData, `"recentDatapoints":[5.0]`) {
		t.Errorf("reason data %s: want numbers written as CloudWatch does (5.0)", got.ReasonData)
	}

	// M of N, and the other reasons, name their numbers.
	for _, c := range []struct {
		from    string
		n, m    int
		missing string
		points  string
		want    string
	}{
		{"OK", 3, 2, "", "0 0 X 0 X", "Threshold Crossed: 2 out of the last 3 datapoints [5.0 (01/05/24 12:01:00), 5.0 (01/05/24 11:59:00)] were greater than the threshold (1.0) (minimum 2 datapoints for OK -> ALARM transition)."},
		{"OK", 3, 2, "", "X X 0 0 X", "Threshold Crossed: 2 out of the last 3 datapoints [0.0 (01/05/24 12:00:00), 0.0 (01/05/24 11:59:00)] were not greater than the threshold (1.0)."},
		{"ALARM", 3, 2, "", "X X 0 0 X", "Threshold Crossed: 2 out of the last 3 datapoints [0.0 (01/05/24 12:00:00), 0.0 (01/05/24 11:59:00)] were not greater than the threshold (1.0) (minimum 2 datapoints for ALARM -> OK transition)."},
		{"OK", 3, 3, "", "- - - - -", "Insufficient Data: 5 datapoints were unknown."},
		{"OK", 3, 3, kiln.MissingBreaching, "- - - - -", "Threshold Crossed: no datapoints were received for 5 periods and 3 missing datapoints were treated as [Breaching] (minimum 3 datapoints for OK -> ALARM transition)."},
		{"OK", 3, 3, "", "- - - - X", "Insufficient Data: 1 datapoint [5.0 (01/05/24 12:01:00)] was greater than the threshold (1.0) and 4 datapoints were unknown; with missing data the oldest breaching datapoint must be 3 periods old before ALARM."},
	} {
		a := thresholdAlarm(60, c.n, c.m, c.missing)
		a.StateValue = c.from
		if got := Evaluate(a, pattern(t, a, evalNow, c.points), evalNow); got.Reason != c.want {
			t.Errorf("%s, %d of %d: reason\n%q, want\n%q", c.points, c.m, c.n, got.Reason, c.want)
		}
	}
}

func TestFormatFloat(t *testing.T) {
	for v, want := range map[float64]string{0: "0.0", 84: "84.0", -3: "-3.0", 0.25: "0.25", 1e21: "1000000000000000000000.0", math.Inf(1): "+Inf"} {
		if got := formatFloat(v); got != want {
			t.Errorf("formatFloat(%v) = %q, want %q", v, got, want)
		}
	}
}

// The engine's fast path decides the same state as Evaluate.
func TestStateMatchesEvaluate(t *testing.T) {
	syms := []string{"0", "X", "-"}
	for _, treat := range []string{kiln.MissingMissing, kiln.MissingIgnore, kiln.MissingBreaching, kiln.MissingNotBreaching} {
		for m := 1; m <= 3; m++ {
			for code := range 243 { // every pattern of 5 symbols
				var p []string
				for c := code; len(p) < 5; c /= 3 {
					p = append(p, syms[c%3])
				}
				a := thresholdAlarm(60, 3, m, treat)
				a.StateValue = kiln.StateOK
				pts := pattern(t, a, evalNow, strings.Join(p, " "))
				if got, want := state(a, a.StateValue, pts, evalNow), Evaluate(a, pts, evalNow).State; got != want {
					t.Errorf("%v, %d of 3, %s: state %s, Evaluate %s", p, m, treat, got, want)
				}
			}
		}
	}
}

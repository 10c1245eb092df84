package alarm

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// FuzzAlarmRecord decodes a whole alarm record, validates it and, if it is
// valid, evaluates it over a small series derived from the input: no
// panic, no overflow, and the window lies within CloudWatch's limits.
func FuzzAlarmRecord(f *testing.F) {
	f.Add(`{"AlarmName":"a","Namespace":"AWS/SageMaker","MetricName":"Invocations","Statistic":"Sum","Period":86400,"EvaluationPeriods":4611686018427387904,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}`, int64(0), uint8(3))
	f.Add(`{"AlarmName":"a","Namespace":"n","MetricName":"m","ExtendedStatistic":"p99","Period":1,"EvaluationPeriods":86400,"DatapointsToAlarm":3,"Threshold":0,"ComparisonOperator":"LessThanThreshold","TreatMissingData":"ignore","EvaluateLowSampleCountPercentile":"ignore"}`, int64(1e9), uint8(200))
	f.Add(`{"AlarmName":"a","Namespace":"n","MetricName":"m","Statistic":"Average","Period":3600,"EvaluationPeriods":168,"Threshold":5,"ComparisonOperator":"GreaterThanOrEqualToThreshold","TreatMissingData":"breaching"}`, int64(-5), uint8(9))
	f.Fuzz(func(t *testing.T, js string, seed int64, npoints uint8) {
		var a kiln.Alarm
		if json.Unmarshal([]byte(js), &a) != nil {
			return
		}
		valid := a.Validate() == nil
		if a.AlarmRule != "" || a.Judge != nil {
			return
		}
		now := time.Unix(1_700_000_000+seed%1_000_000_000, 0).UTC()
		start, end := Window(&a, now)
		if end.After(now) || !start.Before(end) || end.Sub(start) > (7*24+48)*time.Hour {
			t.Fatalf("Window(%d, %d) = [%v, %v) at %v", a.Period, a.EvaluationPeriods, start, end, now)
		}
		// A small series: points spread over the window, some NaN.
		span := end.Sub(start)
		var pts []Datapoint
		for i := range int(npoints) {
			off := time.Duration(uint64(seed*int64(i+1)) % uint64(span))
			v := float64((seed>>uint(i%32))%7) - 3
			if i%11 == 5 {
				v = math.NaN()
			}
			pts = append(pts, Datapoint{Timestamp: start.Add(off), Value: v, SampleCount: float64(i % 4)})
		}
		a.StateValue = []string{kiln.StateOK, kiln.StateAlarm, kiln.StateInsufficientData, ""}[int(npoints)%4]
		res := Evaluate(&a, pts, now)
		switch res.State {
		case kiln.StateOK, kiln.StateAlarm, kiln.StateInsufficientData:
		case "":
			if valid {
				t.Fatalf("a valid alarm evaluated to no state: %+v", res)
			}
		default:
			t.Fatalf("state %q", res.State)
		}
		if got := state(&a, a.StateValue, pts, now); valid && got != res.State {
			t.Fatalf("state() = %s, Evaluate = %s", got, res.State)
		}
	})
}

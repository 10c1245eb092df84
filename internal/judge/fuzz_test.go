package judge

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
)

// FuzzJudgeSpec: whatever a client sends as a judge alarm, validation
// answers with an error naming a Judge field or accepts it, and an accepted
// spec evaluates to a valid state with JSON reason data, never a panic.
func FuzzJudgeSpec(f *testing.F) {
	f.Add("ep", 0.01, true, 0.1, "errors,latency", 0, "", false, 0.1, true, 0.0)
	f.Add("ep", 0.0, false, 0.0, "", 100, "wait", true, 0.5, false, 1.0)
	f.Add("", -1.0, true, -0.5, "errors,errors", -3, "maybe", false, 2.0, true, math.NaN())
	f.Add("ep", math.NaN(), true, math.Inf(1), "latency", 1, "pass", true, 1e-300, false, 1e300)
	f.Fuzz(func(t *testing.T, endpoint string, alpha float64, hasTol bool, tol float64, metrics string, minReq int, insufficient string, early bool, share float64, errs bool, latencySeconds float64) {
		spec := &kiln.JudgeSpec{EndpointName: endpoint, Alpha: alpha, MinRequests: minReq, InsufficientData: insufficient, EarlyPromotion: early}
		if hasTol {
			spec.Tolerance = &tol
		}
		if metrics != "" {
			spec.Metrics = strings.Split(metrics, ",")
		}
		a := &kiln.Alarm{AlarmName: "fuzz", Judge: spec}
		if err := a.Validate(); err != nil {
			if kiln.ErrorCode(err) != kiln.EINVALID {
				t.Fatalf("validation error %v has code %q, want EINVALID", err, kiln.ErrorCode(err))
			}
			if msg := kiln.ErrorMessage(err); !strings.Contains(msg, "Judge") && !strings.Contains(msg, "judge") {
				t.Fatalf("validation error %q names no Judge field", msg)
			}
			return
		}
		if a := spec.AlphaOrDefault(); !(a > 0 && a <= 0.5) {
			t.Fatalf("accepted Alpha resolves to %v", a)
		}
		if tl := spec.ToleranceOrDefault(); !(tl >= 0 && tl <= 10) {
			t.Fatalf("accepted Tolerance resolves to %v", tl)
		}
		j := New(clock.NewFake())
		j.Judge(context.Background(), a)
		lat := time.Duration(latencySeconds * float64(time.Second))
		g, b := j.Recorder(endpoint, "g", true), j.Recorder(endpoint, "b", false)
		for i := range 300 {
			b.Record(Sample{Error: errs && i%7 == 0, Latency: lat + time.Duration(i)*time.Millisecond, Share: share})
			g.Record(Sample{Error: errs, Latency: lat * 2, Share: share})
		}
		res, ok := j.Judge(context.Background(), a)
		if !ok {
			t.Fatal("no verdict for a valid judge alarm")
		}
		switch res.State {
		case kiln.StateOK, kiln.StateAlarm, kiln.StateInsufficientData:
		default:
			t.Fatalf("state %q", res.State)
		}
		if res.Reason == "" || !json.Valid([]byte(res.ReasonData)) {
			t.Fatalf("reason %q, reason data %q", res.Reason, res.ReasonData)
		}
	})
}

package judge

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
)

// TestMinRequestsGatesOnlyOK checks what docs/judge.md (and put-judge's
// help) says of MinRequests: it is the number of requests each fleet must
// answer before the judge says OK; a regression clear enough goes to ALARM
// with fewer, since the test is valid at any sample size.
func TestMinRequestsGatesOnlyOK(t *testing.T) {
	doc, err := os.ReadFile("../../docs/judge.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, said := range []string{
		"requests each fleet must answer side by side before the judge says `OK`",
		"goes to `ALARM` as soon as the evidence shows a regression, with fewer",
	} {
		if !strings.Contains(string(doc), said) {
			t.Fatalf("docs/judge.md no longer says %q: update this test with it", said)
		}
	}

	j := New(clock.NewFake())
	a := judgeAlarm("judge", "ep", func(s *kiln.JudgeSpec) { s.MinRequests = 1000; s.Metrics = []string{kiln.JudgeErrors} })
	mustJudge(t, j, a)
	outage := fleetModel{errRate: 1, median: 50 * time.Millisecond, sigma: 0.5}
	tr := newTraffic(j, "ep", 7, healthy, outage)
	tr.send(400, 0.1) // 400 in all, about 40 on green: far below 1,000 each
	res := mustJudge(t, j, a)
	if res.State != kiln.StateAlarm {
		t.Errorf("state %s for a total outage seen on fewer than MinRequests requests, want ALARM: %s", res.State, res.Reason)
	}

	// A healthy green with as few requests gets no OK: that needs MinRequests.
	j = New(clock.NewFake())
	mustJudge(t, j, a)
	tr = newTraffic(j, "ep", 8, healthy, healthy)
	tr.send(400, 0.1)
	if res := mustJudge(t, j, a); res.State != kiln.StateInsufficientData {
		t.Errorf("state %s for a healthy green below MinRequests, want INSUFFICIENT_DATA: %s", res.State, res.Reason)
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// The live views cut long reasons (a judge's runs to 600 characters), hide
// the previous update's failure while a new one runs, print nothing when
// nothing changed, and give the full reason at the end.
func TestWatchViewsCutAndSkip(t *testing.T) {
	long := "Judge: the new fleet of endpoint \"demo\" is worse than the old one " + strings.Repeat("(evidence) ", 60)
	ep := &kiln.Endpoint{EndpointName: "demo", EndpointStatus: kiln.StatusUpdating, EndpointConfigName: "demo-v1",
		FailureReason: "Update rolled back because alarm \"demo-5xx\" is in ALARM: the previous update",
		Deployment:    &kiln.Deployment{ID: "bluegreen-7", Kind: kiln.DeployBlueGreen, EndpointConfigName: "demo-v2", Phase: kiln.PhaseBaking, Step: 1}}
	st := status{ep: ep, alarmNames: []string{"demo-judge"}, alarms: map[string]kiln.AlarmState{"demo-judge": {StateValue: kiln.StateAlarm, StateReason: long}}, now: time.Now()}

	var lines bytes.Buffer
	lv := &lineView{w: &lines, start: st.now}
	lv.show(st)
	first := lines.Len()
	lv.show(st)
	if lines.Len() != first {
		t.Errorf("line view printed again with nothing changed:\n%s", lines.String())
	}
	var tty bytes.Buffer
	tv := &ttyView{w: &tty, width: 100}
	tv.show(st)
	tv.show(st)
	for name, out := range map[string]string{"line": lines.String(), "terminal": tty.String()} {
		if strings.Contains(out, "the previous update") {
			t.Errorf("%s view shows the previous update's failure during a new one:\n%s", name, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if n := len([]rune(l)); n > 200 {
				t.Errorf("%s view has a line of %d characters, want the reason cut:\n%s", name, n, l)
			}
		}
	}
	if n := strings.Count(tty.String(), "\n"); n != len(renderStatus(st, 99)) {
		t.Errorf("terminal view drew %d lines for one unchanged frame shown twice, want %d", n, len(renderStatus(st, 99)))
	}
	lines.Reset()
	lv.end(outcome{code: exitAlarm, what: "was rolled back by a rollback alarm", reason: long})
	if !strings.Contains(lines.String(), long) {
		t.Errorf("the end does not give the full reason:\n%s", lines.String())
	}
}

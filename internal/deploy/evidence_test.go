package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// noTraffic: the new fleets answer nothing.
func noTraffic(*world, kiln.Fleet, time.Time) int { return 0 }

// trafficFrom: from t0+at on, every new fleet that takes traffic answers
// perSecond requests a second.
func trafficFrom(at time.Duration, perSecond int) func(*world, kiln.Fleet, time.Time) int {
	return func(w *world, f kiln.Fleet, since time.Time) int {
		if f.ActiveInstanceCount == 0 || f.TrafficShare == 0 {
			return 0
		}
		from := t0.Add(at)
		if since.After(from) {
			from = since
		}
		if !w.now.After(from) {
			return 0
		}
		return int(w.now.Sub(from)/time.Second) * perSecond
	}
}

func withEvidence(dc *kiln.DeploymentConfig, minRequests, timeout int) *kiln.DeploymentConfig {
	dc.MinRequestsPerBake, dc.EvidenceTimeoutInSeconds = minRequests, timeout
	return dc
}

// TestEvidence: a bake that saw no request on the new fleet says so, and
// MinRequestsPerBake holds a bake until its requests came, or rolls the
// update back.
func TestEvidence(t *testing.T) {
	tests := []struct {
		name     string
		dc       *kiln.DeploymentConfig
		tag      string // the endpoint's kiln:MinRequestsPerBake tag, if any
		answered func(*world, kiln.Fleet, time.Time) int
		alarm    time.Duration // when alarm "a" goes to ALARM (0: never)

		wantConfig  string // the config in service at the end
		wantFailure string // in FailureReason
		wantWarning string // in EvidenceWarning ("" : none)
		wantHistory string // in some history event
		wantEnd     time.Duration
	}{
		{name: "traffic: promoted, no warning", dc: canaryConfig(count(1), 600, 300, "a"), answered: trafficFrom(0, 1),
			wantConfig: "c2", wantEnd: 15 * time.Minute},
		{name: "no traffic, not required: promoted with a warning", dc: canaryConfig(count(1), 600, 300, "a"), answered: noTraffic,
			wantConfig: "c2", wantWarning: "Promoted without evidence: the new fleet answered no request during the bake of step(s) 1, 2",
			wantHistory: `No evidence: the bake of step 1 ended with no request answered by the new fleet; alarm(s) "a" watched no traffic.`, wantEnd: 15 * time.Minute},
		{name: "no traffic, not counted: no warning", dc: canaryConfig(count(1), 600, 300, "a"),
			wantConfig: "c2", wantEnd: 15 * time.Minute},
		{name: "zero-second bakes are not blind", dc: allAtOnceConfig(0, 0, "a"), answered: noTraffic,
			wantConfig: "c2", wantEnd: 0},
		{name: "canary bake blind, final bake saw traffic", dc: canaryConfig(count(1), 600, 300, "a"), answered: trafficFrom(11*time.Minute, 1),
			wantConfig: "c2", wantWarning: "during the bake of step(s) 1, so", wantEnd: 15 * time.Minute},
		{name: "required, no traffic: rolled back at the execution timeout", dc: withEvidence(canaryConfig(count(1), 600, 300, "a"), 5, 0), answered: noTraffic,
			wantConfig: "c1", wantFailure: "the new fleet answered 0 of the 5 requests the bake of step 1 needs (MinRequestsPerBake) within MaximumExecutionTimeoutInSeconds (28800 seconds)",
			wantHistory: "waiting for the new fleet to answer at least 5 requests", wantEnd: 8 * time.Hour},
		{name: "required, no traffic: rolled back at the evidence timeout", dc: withEvidence(canaryConfig(count(1), 600, 300, "a"), 5, 60), answered: noTraffic,
			wantConfig: "c1", wantFailure: "answered 0 of the 5 requests the bake of step 1 needs (MinRequestsPerBake) within EvidenceTimeoutInSeconds (60 seconds)",
			wantEnd: 11 * time.Minute},
		{name: "required, too little traffic: rolled back", dc: withEvidence(canaryConfig(count(1), 60, 0, "a"), 1000, 60), answered: trafficFrom(0, 1),
			wantConfig: "c1", wantFailure: "answered 120 of the 1000 requests", wantEnd: 2 * time.Minute},
		{name: "required, late traffic: held, then promoted", dc: withEvidence(canaryConfig(count(1), 600, 300, "a"), 5, 0), answered: trafficFrom(20*time.Minute, 1),
			wantConfig: "c2", wantHistory: "Baking beyond 600 seconds", wantEnd: 25*time.Minute + 5*time.Second},
		{name: "required by the endpoint's tag", dc: canaryConfig(count(1), 600, 300, "a"), tag: "5", answered: noTraffic,
			wantConfig: "c1", wantFailure: "0 of the 5 requests", wantEnd: 8 * time.Hour},
		{name: "config overrides the tag", dc: withEvidence(canaryConfig(count(1), 600, 300, "a"), 2, 0), tag: "1000", answered: trafficFrom(0, 1),
			wantConfig: "c2", wantEnd: 15 * time.Minute},
		{name: "tag of 0: off", dc: canaryConfig(count(1), 600, 300, "a"), tag: "0", answered: noTraffic,
			wantConfig: "c2", wantWarning: "Promoted without evidence", wantEnd: 15 * time.Minute},
		{name: "the alarm still rolls back a held bake", dc: withEvidence(canaryConfig(count(1), 600, 300, "a"), 5, 0), answered: noTraffic, alarm: 30 * time.Minute,
			wantConfig: "c1", wantFailure: `alarm "a" is in ALARM`, wantEnd: 30 * time.Minute},
		{name: "rolling: a blind batch is reported", dc: rollingConfig(pct(50), nil, 60, "a"), answered: noTraffic,
			wantConfig: "c2", wantWarning: "step(s) 0, 2,", wantEnd: 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := created(t, c1)
			if tt.tag != "" {
				w.ep.Tags = []kiln.Tag{{Key: kiln.MinRequestsTag, Value: tt.tag}}
			}
			w.now = t0
			w.update(c2, tt.dc)
			w.answered = tt.answered
			sc := scenario{alarm: tt.alarm}
			w.hook = sc.hook
			if tt.alarm > 0 {
				w.changesAt = append(w.changesAt, t0.Add(tt.alarm))
			}
			// The controller looks every second: what the fleets answered
			// is seen within one.
			for s := range 30 * 60 {
				w.changesAt = append(w.changesAt, t0.Add(time.Duration(s)*time.Second))
			}
			w.settle()
			ep := w.ep
			if ep.EndpointStatus != kiln.StatusInService || ep.EndpointConfigName != tt.wantConfig {
				t.Fatalf("got %s on %s (%s), want InService on %s", ep.EndpointStatus, ep.EndpointConfigName, ep.FailureReason, tt.wantConfig)
			}
			if tt.wantFailure == "" && ep.FailureReason != "" || !strings.Contains(ep.FailureReason, tt.wantFailure) {
				t.Errorf("FailureReason = %q, want it to contain %q", ep.FailureReason, tt.wantFailure)
			}
			if tt.wantWarning == "" && ep.EvidenceWarning != "" || !strings.Contains(ep.EvidenceWarning, tt.wantWarning) {
				t.Errorf("EvidenceWarning = %q, want it to contain %q", ep.EvidenceWarning, tt.wantWarning)
			}
			if tt.wantHistory != "" {
				found := false
				for _, ev := range w.history {
					found = found || strings.Contains(ev.Message, tt.wantHistory)
				}
				if !found {
					t.Errorf("no history event contains %q; history: %+v", tt.wantHistory, w.history)
				}
			}
			if got := w.now.Sub(t0); got != tt.wantEnd {
				t.Errorf("ended at +%v, want +%v", got, tt.wantEnd)
			}
		})
	}
}

// TestEvidenceWarningCleared: an update that saw traffic in every bake
// clears the warning of one that did not.
func TestEvidenceWarningCleared(t *testing.T) {
	w := created(t, c1)
	w.answered = noTraffic
	w.update(c2, canaryConfig(count(1), 60, 0, "a"))
	w.settle()
	if w.ep.EvidenceWarning == "" {
		t.Fatal("no EvidenceWarning after an update whose bakes saw no request")
	}
	w.answered = trafficFrom(0, 1)
	w.update(c1, canaryConfig(count(1), 60, 0, "a"))
	w.settle()
	if w.ep.EvidenceWarning != "" || w.ep.EndpointConfigName != "c1" {
		t.Fatalf("after an update with traffic: on %s, EvidenceWarning %q, want on c1 with none", w.ep.EndpointConfigName, w.ep.EvidenceWarning)
	}
}

// TestMinRequestsValidation: bad values are refused with the field's name.
func TestMinRequestsValidation(t *testing.T) {
	for _, tt := range []struct {
		name string
		dc   *kiln.DeploymentConfig
		tag  string
		want string
	}{
		{"negative", withEvidence(canaryConfig(count(1), 60, 0), -1, 0), "", "DeploymentConfig.MinRequestsPerBake must be between 0 and"},
		{"timeout without requests", withEvidence(canaryConfig(count(1), 60, 0), 0, 60), "", "EvidenceTimeoutInSeconds applies only with MinRequestsPerBake"},
		{"timeout too long", withEvidence(canaryConfig(count(1), 60, 0), 1, 28801), "", "EvidenceTimeoutInSeconds must be between 0 and 28800"},
		{"bad tag", canaryConfig(count(1), 60, 0), "many", `Tag kiln:MinRequestsPerBake of endpoint "ep" is "many"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := created(t, c1)
			if tt.tag != "" {
				w.ep.Tags = []kiln.Tag{{Key: kiln.MinRequestsTag, Value: tt.tag}}
			}
			_, err := StartUpdate(w.ep, c2, testModels, kiln.UpdateEndpointInput{EndpointName: "ep", EndpointConfigName: "c2", DeploymentConfig: tt.dc}, func(string) bool { return true }, t0)
			if err == nil || kiln.ErrorCode(err) != kiln.EINVALID || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an EINVALID error containing %q", err, tt.want)
			}
		})
	}
}

// TestAlarmSettlesBeforeTraffic: an alarm still in ALARM from the update
// rolled back just before holds the next update's traffic until it leaves
// ALARM, rather than failing it; one that stays in ALARM fails it after
// PreTrafficAlarmWait, with green never given traffic.
func TestAlarmSettlesBeforeTraffic(t *testing.T) {
	for _, tt := range []struct {
		name       string
		okAt       time.Duration // when the alarm leaves ALARM (0: never)
		wantConfig string
		wantEnd    time.Duration
	}{
		{"settles after 2s", 2 * time.Second, "c2", 2*time.Second + 10*time.Minute},
		{"settles just in time", PreTrafficAlarmWait - time.Second, "c2", PreTrafficAlarmWait - time.Second + 10*time.Minute},
		{"stays in ALARM", 0, "c1", PreTrafficAlarmWait},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := created(t, c1)
			w.now = t0
			w.setAlarm("a", kiln.StateAlarm, "the last update's errors")
			w.update(c2, canaryConfig(count(1), 600, 0, "a"))
			green := w.ep.Deployment.Green
			if tt.okAt > 0 {
				w.changesAt = []time.Time{t0.Add(tt.okAt)}
				w.hook = func(w *world) {
					if !w.now.Before(t0.Add(tt.okAt)) {
						w.alarms["a"] = kiln.AlarmState{StateValue: kiln.StateOK}
					}
				}
			}
			w.settle()
			if w.ep.EndpointConfigName != tt.wantConfig || w.now.Sub(t0) != tt.wantEnd {
				t.Fatalf("ended on %s at +%v (%q), want %s at +%v", w.ep.EndpointConfigName, w.now.Sub(t0), w.ep.FailureReason, tt.wantConfig, tt.wantEnd)
			}
			for _, r := range w.records {
				if s := greenShareOf(r.ep, green, "v"); s != 0 && r.at.Before(t0.Add(tt.okAt)) {
					t.Fatalf("green got a share of %v at +%v, while the alarm was in ALARM", s, r.at.Sub(t0))
				}
			}
			if !hasMessage(w.statusMessages("v"), `Waiting for alarm "a" to leave ALARM before moving traffic; the update fails if it is still in ALARM 60 seconds after it started.`) {
				t.Errorf("the variant never said what it waits for: %q", w.statusMessages("v"))
			}
		})
	}
}

// TestMinRequestsTagChecked: a bad kiln:MinRequestsPerBake tag is refused
// when it is given, not at the next update.
func TestMinRequestsTagChecked(t *testing.T) {
	bad := []kiln.Tag{{Key: kiln.MinRequestsTag, Value: "lots"}}
	if _, err := StartCreate(kiln.CreateEndpointInput{EndpointName: "ep", EndpointConfigName: "c1", Tags: bad}, c1, testModels, testARN, t0); err == nil || !strings.Contains(err.Error(), `"lots"`) {
		t.Errorf("CreateEndpoint with a bad tag: %v, want an error naming its value", err)
	}
	if _, err := kiln.AddTags(nil, bad); err == nil || kiln.ErrorCode(err) != kiln.EINVALID || !strings.Contains(err.Error(), kiln.MinRequestsTag) {
		t.Errorf("AddTags with a bad tag: %v, want an EINVALID error naming the tag", err)
	}
	if _, err := kiln.AddTags(nil, []kiln.Tag{{Key: kiln.MinRequestsTag, Value: "5"}}); err != nil {
		t.Errorf("AddTags with a good tag: %v", err)
	}
}

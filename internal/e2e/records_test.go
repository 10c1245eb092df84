package e2e

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/store"
)

// crashingAlarm is the alarm that once passed validation because Period ×
// EvaluationPeriods overflowed, and made the alarm engine panic within a
// second of every start.
const crashingAlarm = `{"AlarmName":"crash","Namespace":"AWS/SageMaker","MetricName":"Invocations",` +
	`"Statistic":"Sum","Period":86400,"EvaluationPeriods":4611686018427387904,"Threshold":1,` +
	`"ComparisonOperator":"GreaterThanThreshold","StateValue":"INSUFFICIENT_DATA","StateReason":"Unchecked: Initial alarm creation"}`

// seedStore writes records into a data dir's store directly, as an older
// Kiln, a hand edit or a damaged disk could have, bypassing validation.
func seedStore(t *testing.T, dataDir string, records map[string]string) {
	t.Helper()
	st, err := store.Open(filepath.Join(dataDir, "kiln.db"), nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	for k, v := range records {
		if _, err := st.Put(context.Background(), k, []byte(v), store.Any); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// A store holding the crashing alarm, a record that does not decode and an
// invalid endpoint: Kiln starts, keeps running and serving, and says what
// it set aside.
func TestBadRecordsDoNotStopKiln(t *testing.T) {
	dir := t.TempDir()
	seedStore(t, dir, map[string]string{
		"alarms/crash":         crashingAlarm,
		"alarms/garbage":       `{"AlarmName": "garbage", "Period": "not a number"`,
		"endpoints/broken":     `{"EndpointName":"broken","EndpointStatus":"InService","Fleets":[{"ID":"f1","VariantName":"v","ModelName":"m","Container":{"Image":"true"},"InstanceCount":0,"ActiveInstanceCount":5,"TrafficShare":1}]}`,
		"endpoints/unreadable": `[1,2,3]`,
	})
	p := startKiln(t, dir)
	ctx := context.Background()

	// The alarm engine ticks five times a second: within a few ticks the
	// alarm is marked, and the process is still there.
	waitFor(t, 20*time.Second, "the crashing alarm marked", func() bool {
		a, err := p.client.GetAlarm(ctx, "crash")
		return err == nil && a.StateValue == kiln.StateInsufficientData && strings.Contains(a.StateReason, "EvaluationPeriods")
	})
	a, _ := p.client.GetAlarm(ctx, "crash")
	if !strings.Contains(a.StateReason, "Kiln cannot evaluate this alarm") {
		t.Errorf("crash: reason %q", a.StateReason)
	}
	waitFor(t, 20*time.Second, "the invalid endpoint marked Failed", func() bool {
		ep, err := p.client.GetEndpoint(ctx, "broken")
		return err == nil && ep.EndpointStatus == kiln.StatusFailed && strings.Contains(ep.FailureReason, "ActiveInstanceCount")
	})
	select {
	case <-p.done:
		t.Fatalf("kiln exited:\n%s", tail(p.logs.String(), 4000))
	default:
	}
	// It serves: a valid alarm is created and evaluated beside the bad one.
	good := &kiln.Alarm{AlarmName: "good", Namespace: "AWS/SageMaker", MetricName: "Invocations", Statistic: "Sum",
		Period: 1, EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: kiln.GreaterThanThreshold, TreatMissingData: kiln.MissingNotBreaching}
	if _, err := p.client.PutAlarm(ctx, good); err != nil {
		t.Fatalf("PutAlarm good: %v", err)
	}
	waitFor(t, 20*time.Second, "the good alarm evaluated", func() bool {
		a, err := p.client.GetAlarm(ctx, "good")
		return err == nil && a.StateValue == kiln.StateOK
	})
	// The bad records can be deleted through the API.
	if err := p.client.DeleteAlarms(ctx, []string{"crash"}); err != nil {
		t.Errorf("DeleteAlarms crash: %v", err)
	}
	if err := p.client.DeleteEndpoint(ctx, "broken"); err != nil {
		t.Errorf("DeleteEndpoint broken: %v", err)
	}
	for _, want := range []string{"alarms/garbage", "endpoints/unreadable"} {
		if !strings.Contains(p.logs.String(), want) {
			t.Errorf("the log does not name the skipped record %s", want)
		}
	}
	// And it starts again on the same store.
	p.stop()
	q := startKiln(t, dir)
	if _, err := q.client.GetAlarm(ctx, "good"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// The API call that stored the crashing alarm is refused with a 400 that
// names the field, through /v1.
func TestCrashingAlarmRefused(t *testing.T) {
	p := startKiln(t, "")
	req, _ := http.NewRequest(http.MethodPut, p.url+"/v1/alarms/crash", strings.NewReader(crashingAlarm))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "EvaluationPeriods") || !strings.Contains(string(body), `"invalid"`) {
		t.Fatalf("PUT the crashing alarm: %d %s, want 400 naming EvaluationPeriods", resp.StatusCode, body)
	}
	if _, err := p.client.GetAlarm(context.Background(), "crash"); kiln.ErrorCode(err) != kiln.ENOTFOUND {
		t.Errorf("the refused alarm was stored: %v", err)
	}
}

// The crashing alarm alone in the store: Kiln once died within a second of
// every start. It now keeps serving, with the alarm set aside.
func TestStoredCrashingAlarm(t *testing.T) {
	dir := t.TempDir()
	seedStore(t, dir, map[string]string{"alarms/crash": crashingAlarm})
	p := startKiln(t, dir)
	ctx := context.Background()
	waitFor(t, 20*time.Second, "the crashing alarm marked", func() bool {
		select {
		case <-p.done:
			t.Fatalf("kiln exited:\n%s", tail(p.logs.String(), 4000))
		default:
		}
		a, err := p.client.GetAlarm(ctx, "crash")
		return err == nil && strings.Contains(a.StateReason, "EvaluationPeriods")
	})
	resp, err := http.Get(p.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the alarm was set aside: %v", err)
	}
	resp.Body.Close()
}

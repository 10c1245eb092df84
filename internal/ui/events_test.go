package ui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
	"github.com/kiln-serve/kiln/internal/ui"
)

// The server serves the dashboard at /ui/, and the stream refuses what it
// cannot follow.
func TestEventsRefusesBadRequests(t *testing.T) {
	k := startServer(t)
	for _, tc := range []struct {
		query  string
		status int
		code   string
	}{
		{"", 400, kiln.EINVALID},
		{"?endpoint=no%20spaces", 400, kiln.EINVALID},
		{"?endpoint=missing", 404, kiln.ENOTFOUND},
	} {
		resp, body := getBody(t, k.url+"/ui/api/events"+tc.query)
		if resp.StatusCode != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) {
			t.Errorf("events%s: %d %s, want %d %s", tc.query, resp.StatusCode, body, tc.status, tc.code)
		}
	}
}

// The stream sends a snapshot at once, then one per tick of its clock, and
// its goroutine ends with the request.
func TestEventsStreamFollowsTheClock(t *testing.T) {
	k := startServer(t)
	ctx := context.Background()
	_, err := k.svc.PutAlarm(ctx, &kiln.Alarm{
		AlarmName: "demo-5xx", Namespace: "AWS/SageMaker", MetricName: "Invocation5XXErrors", Statistic: "Sum",
		Dimensions: []kiln.Dimension{{Name: "EndpointName", Value: "demo"}, {Name: "VariantName", Value: "AllTraffic"}},
		Period:     1, EvaluationPeriods: 1, Threshold: 0, ComparisonOperator: kiln.GreaterThanThreshold,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.svc.PutAlarm(ctx, &kiln.Alarm{
		AlarmName: "elsewhere", Namespace: "AWS/SageMaker", MetricName: "Invocations", Statistic: "Sum",
		Dimensions: []kiln.Dimension{{Name: "EndpointName", Value: "other"}},
		Period:     1, EvaluationPeriods: 1, Threshold: 0, ComparisonOperator: kiln.GreaterThanThreshold,
	})
	if err != nil {
		t.Fatal(err)
	}
	dc := &kiln.DeploymentConfig{AutoRollbackConfiguration: &kiln.AutoRollbackConfiguration{Alarms: []kiln.AlarmRef{{AlarmName: "demo-5xx"}}}}
	k.createEndpoint(t, "demo", 1, dc)

	fake := clock.NewFake()
	done := make(chan struct{})
	h := ui.Handler(ui.Config{Service: k.svc, Clock: fake})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if strings.HasPrefix(r.URL.Path, "/ui/api/events") {
			close(done)
		}
	}))
	defer ts.Close()

	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, events := openEvents(t, reqCtx, ts.URL, "demo")

	first := events.nextSnapshot()
	if first.Endpoint == nil || first.Endpoint.EndpointName != "demo" {
		t.Fatalf("first snapshot's endpoint %+v, want demo", first.Endpoint)
	}
	if !first.Time.Equal(fake.Now().UTC()) || !first.Second.Equal(fake.Now().UTC().Truncate(time.Second).Add(-time.Second)) {
		t.Errorf("Time %v, Second %v; want the clock's now and the second before", first.Time, first.Second)
	}
	if !first.HistoryComplete {
		t.Error("the first snapshot's history is not marked complete")
	}
	if len(first.Alarms) != 1 {
		t.Fatalf("alarms %+v, want demo-5xx only", first.Alarms)
	}
	a := first.Alarms[0]
	if a.AlarmName != "demo-5xx" || !a.Watched || a.Chart != ui.ChartErrors5XX || a.ChartThreshold == nil || *a.ChartThreshold != 0 ||
		a.ComparisonOperator != kiln.GreaterThanThreshold || a.StateValue == "" {
		t.Errorf("alarm %+v, want demo-5xx watched, drawn on the 5xx chart at 0", a)
	}

	// The next snapshot waits for the clock.
	if err := fake.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Second)
	second := events.nextSnapshot()
	if !second.Time.Equal(first.Time.Add(time.Second)) {
		t.Errorf("second snapshot at %v, want %v", second.Time, first.Time.Add(time.Second))
	}
	if second.HistoryComplete {
		t.Error("the second snapshot's history is marked complete; want only what is new")
	}

	// Closing the request ends the handler.
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the events handler still runs 5s after its request ended")
	}
}

// With traffic, each fleet's last complete second shows its invocations,
// errors and latency; read through the server's own /ui/.
func TestEventsStreamCarriesFleetMetrics(t *testing.T) {
	k := startServer(t)
	k.createEndpoint(t, "live", 1, nil)
	k.waitInService(t, "live")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for i := 0; i < 2000; i++ { // at most ~20s of load
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if code := k.invoke(t, "live"); code != 200 {
				t.Errorf("invocation: status %d", code)
				return
			}
		}
	}()
	defer func() { close(stop); <-loadDone }()

	_, events := openEvents(t, ctx, k.url, "live")
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := events.nextSnapshot()
		if len(s.Fleets) != 1 {
			t.Fatalf("fleets %+v, want one", s.Fleets)
		}
		f := s.Fleets[0]
		if f.Role != ui.RoleBlue || f.EndpointConfigName != "live-v1" || !approx(f.EndpointShare, 1) || !approx(s.Share.Blue, 1) {
			t.Errorf("fleet %+v, share %+v; want live-v1 blue with all the traffic", f, s.Share)
		}
		m := f.Metrics
		if m.Invocations > 0 {
			if m.ModelLatencyP50 == nil || m.ModelLatencyP99 == nil || *m.ModelLatencyP99 < *m.ModelLatencyP50 || *m.ModelLatencyP50 <= 0 {
				t.Errorf("metrics %+v: want latencies with p99 ≥ p50 > 0", m)
			}
			if m.Invocation4XXErrors != 0 || m.Invocation5XXErrors != 0 {
				t.Errorf("metrics %+v: want no errors", m)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot within 15s showed invocations; last %+v", s)
		}
	}
}

// Closing Config.Done ends the streams, so that a server shutting down does
// not wait for open dashboards.
func TestEventsStreamEndsWhenDone(t *testing.T) {
	k := startServer(t)
	k.createEndpoint(t, "demo", 1, nil)
	done := make(chan struct{})
	ts := httptest.NewServer(ui.Handler(ui.Config{Service: k.svc, Done: done}))
	defer ts.Close()
	resp, events := openEvents(t, context.Background(), ts.URL, "demo")
	events.nextSnapshot()
	close(done)
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		ended <- err
	}()
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("the stream ended with %v, want a clean end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream still runs 5s after Done was closed")
	}
}

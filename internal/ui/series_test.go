package ui_test

import (
	"context"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/ui"
)

// A stream's first snapshot carries the endpoint's recent metrics from the
// metrics store, per variant and config, including a config no fleet runs
// any more: here one that answered only errors and was replaced. The next
// snapshots carry the last few seconds only.
func TestEventsStreamCarriesRetiredSeries(t *testing.T) {
	k := startServer(t)
	k.createEndpoint(t, "past", 1, nil)
	k.waitInService(t, "past")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	update := func(config string) {
		t.Helper()
		if _, err := k.svc.UpdateEndpoint(ctx, kiln.UpdateEndpointInput{EndpointName: "past", EndpointConfigName: config}); err != nil {
			t.Fatalf("update to %s: %v", config, err)
		}
		time.Sleep(100 * time.Millisecond)
		k.waitInService(t, "past")
	}
	for i := 0; i < 5; i++ {
		if code := k.invoke(t, "past"); code != 200 {
			t.Fatalf("invocation of past-v1: status %d", code)
		}
	}
	update("past-bad")
	failed := 0
	for i := 0; i < 5; i++ {
		if k.invoke(t, "past") != 200 {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("past-bad answered no error")
	}
	lastBad := time.Now()
	update("past-v1")
	// A snapshot carries complete seconds: let the errors' second end.
	time.Sleep(time.Until(lastBad.Truncate(time.Second).Add(2 * time.Second)))

	_, events := openEvents(t, ctx, k.url, "past")
	first := events.nextSnapshot()
	if got, want := first.SeriesFrom, first.Second.Add(-ui.Backfill+time.Second); !got.Equal(want) {
		t.Errorf("first snapshot's series from %v, want %v (Backfill before its second %v)", got, want, first.Second)
	}
	var bad, v1 *ui.MetricSeries
	for i := range first.Series {
		s := &first.Series[i]
		switch s.EndpointConfigName {
		case "past-bad":
			bad = s
		case "past-v1":
			v1 = s
		}
	}
	if bad == nil || v1 == nil {
		t.Fatalf("first snapshot's series %+v; want past-bad and past-v1", first.Series)
	}
	if bad.Role != "" || v1.Role != ui.RoleBlue {
		t.Errorf("roles: past-bad %q, past-v1 %q; want none (no fleet runs it) and blue", bad.Role, v1.Role)
	}
	errs, calls := 0.0, 0.0
	for _, p := range bad.Points {
		errs += p.Invocation5XXErrors
		calls += p.Invocations
		if p.Second.Before(first.SeriesFrom) || p.Second.After(first.Second) {
			t.Errorf("point at %v outside [%v, %v]", p.Second, first.SeriesFrom, first.Second)
		}
	}
	if errs != float64(failed) || calls != float64(failed) {
		t.Errorf("past-bad's points count %v invocations and %v 5xx errors, want %d of each: %+v", calls, errs, failed, bad.Points)
	}
	ok := 0.0
	for _, p := range v1.Points {
		ok += p.Invocations
	}
	if ok < 5 {
		t.Errorf("past-v1's points count %v invocations, want at least the 5 before the updates", ok)
	}

	second := events.nextSnapshot()
	if want := first.Second.Add(-4 * time.Second); !second.SeriesFrom.Equal(want) {
		t.Errorf("second snapshot's series from %v, want %v: the previous second and a few before", second.SeriesFrom, want)
	}
}

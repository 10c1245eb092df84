package metrics

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetention(t *testing.T) {
	st, clk := newTestStore(t)
	s := st.Series("e", "v", "c")
	t0 := clk.Now()
	at := func(sec int64) time.Time { return t0.Add(time.Duration(sec) * time.Second).UTC() }
	q := func(period time.Duration, from, to time.Time, stat string) []Datapoint {
		t.Helper()
		return mustQuery(t, st, Query{MetricName: ModelLatency, Statistic: stat, Dimensions: fleet("e", "v", "c"),
			Period: period, Start: from, End: to})
	}

	// Two minutes of one request a second, latencies 100 µs, 200 µs, ...
	for i := range 120 {
		s.Record(Sample{Status: 200, ModelLatency: us(float64(100 * (i + 1))), Instances: 1})
		clk.Advance(time.Second)
	}
	clk.Advance(2*time.Hour - 120*time.Second)
	s.Record(Sample{Status: 200, ModelLatency: us(7), Instances: 1}) // at t0+2h
	clk.Advance(2*time.Hour + 2*time.Minute)                         // now = t0+4h+2m

	if got := q(time.Second, at(0), at(120), "SampleCount"); len(got) != 0 {
		t.Errorf("seconds older than 3h still there: %v", got)
	}
	if got := q(time.Second, at(7200), at(7201), "Maximum"); len(got) != 1 || got[0].Value != 7 {
		t.Errorf("second 2h old: got %v, want one datapoint of 7", got)
	}
	want := []Datapoint{
		{Timestamp: at(0), Value: 6000, SampleCount: 60},
		{Timestamp: at(60), Value: 12000, SampleCount: 60},
	}
	got := q(time.Minute, at(0), at(120), "Maximum")
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("minutes 4h old: got %v, want %v", got, want)
	}
	if got := q(2*time.Minute, at(0), at(120), "p50"); len(got) != 1 || math.Abs(got[0].Value-6000)/6000 > 0.01 {
		t.Errorf("p50 of two rolled-up minutes: got %v, want ≈6000", got)
	}
	if got := q(time.Minute, at(0), clk.Now(), "SampleCount"); len(got) != 3 {
		t.Errorf("minutes then seconds: got %v, want 3 datapoints", got)
	}
	// Periods that are not whole minutes have no data older than 3h.
	if got := q(30*time.Second, at(0), at(120), "SampleCount"); len(got) != 0 {
		t.Errorf("30 s periods over minute data: got %v, want none", got)
	}
	s.mu.RLock()
	secs, mins := s.secs.len(), s.mins.len()
	s.mu.RUnlock()
	if secs != 1 || mins != 3 {
		t.Errorf("series holds %d seconds and %d minutes, want 1 and 3", secs, mins)
	}

	// A day later the first minutes are gone too; the minute 23h old stays.
	clk.Advance(21 * time.Hour)
	if got := q(time.Minute, at(0), clk.Now(), "Maximum"); len(got) != 1 || !got[0].Timestamp.Equal(at(7200)) || got[0].Value != 7 {
		t.Errorf("after 25h: got %v, want only the minute at %v", got, at(7200))
	}
	clk.Advance(3 * time.Hour)
	if got := q(time.Minute, at(0), clk.Now(), "SampleCount"); len(got) != 0 {
		t.Errorf("after 28h: got %v, want no data", got)
	}
}

// The second retention boundary is exact: a second exactly 3h old is kept,
// the one before it is gone.
func TestSecondRetentionBoundary(t *testing.T) {
	st, clk := newTestStore(t)
	s := st.Series("e", "v", "c")
	x := clk.Now().Add(17 * time.Second)
	clk.Advance(17 * time.Second)
	s.Record(Sample{Status: 200, Instances: 1})
	clk.Advance(time.Second)
	s.Record(Sample{Status: 200, Instances: 1})
	clk.Advance(SecondRetention)
	got := mustQuery(t, st, Query{MetricName: Invocations, Statistic: "Sum", Dimensions: fleet("e", "v", "c"),
		Period: time.Second, Start: x, End: x.Add(2 * time.Second)})
	if len(got) != 1 || !got[0].Timestamp.Equal(x.Add(time.Second)) {
		t.Errorf("got %v, want only the second at %v", got, x.Add(time.Second))
	}
}

func TestRingBounded(t *testing.T) {
	st, clk := newTestStore(t)
	s := st.Series("e", "v", "c")
	for range 4 * 3600 {
		s.Record(Sample{Status: 200, Instances: 1})
		clk.Advance(time.Second)
	}
	s.advance(clk.Now().Unix())
	if n := s.secs.len(); n > int(secondRetentionSecs) {
		t.Errorf("%d seconds held, want at most %d", n, secondRetentionSecs)
	}
	if n := len(s.secs.buf); n > s.secs.max {
		t.Errorf("second ring capacity %d > %d", n, s.secs.max)
	}
	// Idle for a day: the rings shrink back.
	clk.Advance(MinuteRetention + time.Minute)
	s.advance(clk.Now().Unix())
	if s.secs.len() != 0 || s.mins.len() != 0 || len(s.secs.buf) > 64 || len(s.mins.buf) > 64 {
		t.Errorf("idle series holds %d/%d seconds, %d/%d minutes", s.secs.len(), len(s.secs.buf), s.mins.len(), len(s.mins.buf))
	}
}

// Records from many goroutines, while the clock moves and queries run, all
// count exactly once.
func TestConcurrentRecord(t *testing.T) {
	st, clk := newTestStore(t)
	start := clk.Now()
	keys := [][3]string{{"e", "A", "c1"}, {"e", "A", "c2"}, {"e", "B", "c1"}}
	const workers, perWorker = 8, 3000
	var wg sync.WaitGroup
	var done atomic.Bool
	var recorded [3]atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				k := (w + i) % len(keys)
				st.Series(keys[k][0], keys[k][1], keys[k][2]).Record(Sample{
					Status: 200 + 100*(i%4), ModelError: i%7 == 0,
					ModelLatency: us(float64(1 + i%1000)), OverheadLatency: us(3), Instances: 1 + i%3,
				})
				recorded[k].Add(1)
			}
		}()
	}
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		for !done.Load() {
			clk.Advance(100 * time.Millisecond)
			time.Sleep(50 * time.Microsecond)
		}
	}()
	go func() {
		defer bg.Done()
		for !done.Load() {
			if _, err := st.Query(Query{MetricName: ModelLatency, Statistic: "p99", Dimensions: endpoint("e"),
				Period: time.Second, Start: start, End: clk.Now().Add(time.Second)}); err != nil {
				t.Error(err)
				return
			}
			st.Recent("e", time.Minute)
			st.ListMetrics("", "", nil)
		}
	}()
	wg.Wait()
	done.Store(true)
	bg.Wait()
	clk.Advance(time.Second)

	period := clk.Now().Sub(start).Truncate(time.Second) + time.Hour
	sum := func(metric string, dims map[string]string) float64 {
		var total float64
		for _, dp := range mustQuery(t, st, Query{MetricName: metric, Statistic: "Sum", Dimensions: dims,
			Period: period, Start: start, End: clk.Now()}) {
			total += dp.Value
		}
		return total
	}
	if got := sum(Invocations, endpoint("e")); got != workers*perWorker {
		t.Errorf("Invocations = %v, want %v", got, workers*perWorker)
	}
	if got, want := sum(Invocation4XXErrors, endpoint("e")), float64(workers*perWorker/4); got != want {
		t.Errorf("4xx = %v, want %v", got, want)
	}
	for k, key := range keys {
		if got := sum(Invocations, fleet(key[0], key[1], key[2])); got != float64(recorded[k].Load()) {
			t.Errorf("%v: Invocations = %v, want %v", key, got, recorded[k].Load())
		}
	}
	var latN float64
	for _, dp := range mustQuery(t, st, Query{MetricName: ModelLatency, Statistic: "p50", Dimensions: endpoint("e"),
		Period: time.Second, Start: start, End: clk.Now()}) {
		latN += dp.SampleCount
	}
	if latN != workers*perWorker {
		t.Errorf("latency samples = %v, want %v", latN, workers*perWorker)
	}
}

func TestRecordClampsInput(t *testing.T) {
	st, clk := newTestStore(t)
	s := st.Series("e", "v", "c")
	start := clk.Now()
	s.Record(Sample{Status: 200, ModelLatency: -time.Second, OverheadLatency: 2 * time.Hour, Instances: 0})
	s.Record(Sample{Status: 0, Instances: -5})
	clk.Advance(time.Second)
	q := func(metric, stat string) float64 {
		return value(t, st, Query{MetricName: metric, Statistic: stat, Dimensions: fleet("e", "v", "c"),
			Period: time.Second, Start: start, End: clk.Now()}).Value
	}
	if got := q(ModelLatency, "Minimum"); got != 0 {
		t.Errorf("negative latency recorded as %v µs, want 0", got)
	}
	if got := q(OverheadLatency, "p100"); got != 7.2e9 {
		t.Errorf("two-hour overhead p100 = %v, want 7.2e9", got)
	}
	if got := q(InvocationsPerInstance, "Sum"); got != 2 {
		t.Errorf("InvocationsPerInstance Sum = %v with no instance counts, want 2", got)
	}
}

// A Sample's Time places it in its second; a time before the live second
// counts in the live second.
func TestSampleTime(t *testing.T) {
	st, clk := newTestStore(t)
	s := st.Series("e", "v", "c")
	start := clk.Now()
	s.Record(Sample{Status: 200, Instances: 1, Time: start.Add(2 * time.Second)})
	s.Record(Sample{Status: 200, Instances: 1, Time: start}) // late: counts at start+2s
	s.Record(Sample{Status: 200, Instances: 1, Time: start.Add(3*time.Second + 500*time.Millisecond)})
	clk.Advance(5 * time.Second)
	got := mustQuery(t, st, Query{MetricName: Invocations, Statistic: "Sum", Dimensions: fleet("e", "v", "c"),
		Period: time.Second, Start: start, End: clk.Now()})
	want := []Datapoint{
		{Timestamp: start.Add(2 * time.Second).UTC(), Value: 2, SampleCount: 2},
		{Timestamp: start.Add(3 * time.Second).UTC(), Value: 1, SampleCount: 1},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %v, want %v", got, want)
	}
}

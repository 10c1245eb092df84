package metrics

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kiln-serve/kiln"
)

// Four requests in one second, with every statistic of every metric worked
// out by hand.
func TestStatisticsByHand(t *testing.T) {
	st, clk := newTestStore(t)
	s := st.Series("e", "v", "c")
	start := clk.Now()
	s.Record(Sample{Status: 200, ModelLatency: us(100), OverheadLatency: us(10), Instances: 2})
	s.Record(Sample{Status: 404, ModelLatency: us(200), OverheadLatency: us(20), Instances: 2})
	s.Record(Sample{Status: 500, ModelError: true, ModelLatency: us(300), OverheadLatency: us(30), Instances: 4})
	s.Record(Sample{Status: 200, ModelLatency: us(400), OverheadLatency: us(40), Instances: 4})
	clk.Advance(time.Second)

	tests := []struct {
		metric, stat string
		want         float64
		approx       bool // a sketch percentile: within 1%
	}{
		{Invocations, "SampleCount", 4, false},
		{Invocations, "Sum", 4, false},
		{Invocations, "Average", 1, false},
		{Invocations, "Minimum", 1, false},
		{Invocations, "Maximum", 1, false},
		{Invocations, "p50", 1, false},
		{Invocation4XXErrors, "SampleCount", 4, false},
		{Invocation4XXErrors, "Sum", 1, false},
		{Invocation4XXErrors, "Average", 0.25, false},
		{Invocation4XXErrors, "Minimum", 0, false},
		{Invocation4XXErrors, "Maximum", 1, false},
		{Invocation4XXErrors, "p50", 0, false},  // rank 1 of [0 0 0 1]
		{Invocation4XXErrors, "p99", 0, false},  // rank 2
		{Invocation4XXErrors, "p100", 1, false}, // rank 3
		{Invocation5XXErrors, "Sum", 1, false},
		{Invocation5XXErrors, "Average", 0.25, false},
		{InvocationModelErrors, "Sum", 1, false},
		{InvocationModelErrors, "Maximum", 1, false},
		{InvocationsPerInstance, "SampleCount", 4, false},
		{InvocationsPerInstance, "Sum", 1.5, false},
		{InvocationsPerInstance, "Average", 0.375, false},
		{InvocationsPerInstance, "Minimum", 0.25, false},
		{InvocationsPerInstance, "Maximum", 0.5, false},
		{ModelLatency, "SampleCount", 4, false},
		{ModelLatency, "Sum", 1000, false},
		{ModelLatency, "Average", 250, false},
		{ModelLatency, "Minimum", 100, false},
		{ModelLatency, "Maximum", 400, false},
		{ModelLatency, "p0", 100, false},
		{ModelLatency, "p100", 400, false},
		{ModelLatency, "p50", 200, true},
		{ModelLatency, "p75", 300, true},
		{OverheadLatency, "Sum", 100, false},
		{OverheadLatency, "Average", 25, false},
		{OverheadLatency, "Minimum", 10, false},
		{OverheadLatency, "Maximum", 40, false},
		{OverheadLatency, "p50", 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.metric+"/"+tt.stat, func(t *testing.T) {
			dp := value(t, st, Query{Namespace: Namespace, MetricName: tt.metric, Dimensions: fleet("e", "v", "c"),
				Statistic: tt.stat, Period: time.Minute, Start: start, End: clk.Now()})
			if dp.SampleCount != 4 || !dp.Timestamp.Equal(start) {
				t.Errorf("datapoint %v with %v samples, want %v with 4", dp.Timestamp, dp.SampleCount, start)
			}
			tol := 1e-9 * math.Abs(tt.want)
			if tt.approx {
				tol = 0.01 * tt.want
			}
			if math.Abs(dp.Value-tt.want) > tol {
				t.Errorf("got %v, want %v", dp.Value, tt.want)
			}
		})
	}
}

func TestQueryAggregatesDimensions(t *testing.T) {
	st, clk := newTestStore(t)
	start := clk.Now()
	for range 3 {
		st.Series("e", "A", "c1").Record(Sample{Status: 200, ModelLatency: us(100), Instances: 1})
	}
	st.Series("e", "A", "c2").Record(Sample{Status: 503, ModelLatency: us(1000), Instances: 1})
	for range 2 {
		st.Series("e", "B", "c1").Record(Sample{Status: 400, ModelLatency: us(10), Instances: 1})
	}
	for range 5 {
		st.Series("f", "A", "c1").Record(Sample{Status: 200, ModelLatency: us(1), Instances: 1})
	}
	st.Series("e", "C", "c9") // never recorded
	clk.Advance(time.Second)

	q := func(metric, stat string, dims map[string]string) float64 {
		t.Helper()
		return value(t, st, Query{MetricName: metric, Statistic: stat, Dimensions: dims,
			Period: time.Second, Start: start, End: clk.Now()}).Value
	}
	tests := []struct {
		name         string
		metric, stat string
		dims         map[string]string
		want         float64
	}{
		{"fleet", Invocations, "Sum", fleet("e", "A", "c1"), 3},
		{"other fleet", Invocations, "Sum", fleet("e", "A", "c2"), 1},
		{"variant", Invocations, "Sum", variant("e", "A"), 4},
		{"variant 5xx", Invocation5XXErrors, "Average", variant("e", "A"), 0.25},
		{"variant max", ModelLatency, "Maximum", variant("e", "A"), 1000},
		{"variant min", ModelLatency, "Minimum", variant("e", "A"), 100},
		{"variant p50 merges sketches", ModelLatency, "p50", variant("e", "A"), 100},
		{"variant p100", ModelLatency, "p100", variant("e", "A"), 1000},
		{"endpoint", Invocations, "Sum", endpoint("e"), 6},
		{"endpoint 4xx", Invocation4XXErrors, "Sum", endpoint("e"), 2},
		{"endpoint min", ModelLatency, "Minimum", endpoint("e"), 10},
		{"endpoint average", ModelLatency, "Average", endpoint("e"), (300 + 1000 + 20) / 6.0},
		{"other endpoint", Invocations, "SampleCount", endpoint("f"), 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := q(tt.metric, tt.stat, tt.dims); math.Abs(got-tt.want) > 0.01*tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	for _, dims := range []map[string]string{
		nil,
		{DimVariant: "A"},
		{DimEndpoint: "e", DimConfig: "c1"},
		{DimEndpoint: "e", DimVariant: "A", "Host": "x"},
		{DimEndpoint: "nope"},
		fleet("e", "C", "c9"),
	} {
		if dps := mustQuery(t, st, Query{MetricName: Invocations, Statistic: "Sum", Dimensions: dims,
			Start: start, End: clk.Now()}); len(dps) != 0 {
			t.Errorf("dimensions %v: got %v, want no datapoints", dims, dps)
		}
	}
	if dps := mustQuery(t, st, Query{Namespace: "AWS/EC2", MetricName: Invocations, Statistic: "Sum",
		Dimensions: endpoint("e"), Start: start, End: clk.Now()}); len(dps) != 0 {
		t.Errorf("namespace AWS/EC2: got %v, want no datapoints", dps)
	}
}

func TestQueryPeriods(t *testing.T) {
	st, clk := newTestStore(t)
	s := st.Series("e", "v", "c")
	base := clk.Now() // a whole hour
	at := map[int]int{5: 1, 59: 2, 61: 3, 185: 4}
	for sec := 0; sec < 300; sec++ {
		for range at[sec] {
			s.Record(Sample{Status: 200, Instances: 1})
		}
		clk.Advance(time.Second)
	}
	ts := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second).UTC() }
	type point struct {
		At    time.Time
		Count float64
	}
	run := func(period time.Duration, start, end time.Time) []point {
		t.Helper()
		var got []point
		for _, dp := range mustQuery(t, st, Query{MetricName: Invocations, Statistic: "Sum", Dimensions: fleet("e", "v", "c"),
			Period: period, Start: start, End: end}) {
			if dp.Value != dp.SampleCount {
				t.Errorf("Sum %v != SampleCount %v", dp.Value, dp.SampleCount)
			}
			got = append(got, point{dp.Timestamp, dp.SampleCount})
		}
		return got
	}
	// Periods that are not whole minutes align to the epoch too.
	var want7 []point
	for _, sec := range []int{5, 59, 61, 185} {
		u := ts(sec).Unix()
		p := time.Unix(u-u%7, 0).UTC()
		if n := len(want7); n > 0 && want7[n-1].At.Equal(p) {
			want7[n-1].Count += float64(at[sec])
		} else {
			want7 = append(want7, point{p, float64(at[sec])})
		}
	}

	tests := []struct {
		name       string
		period     time.Duration
		start, end time.Time
		want       []point
	}{
		{"minutes", time.Minute, ts(0), ts(300), []point{{ts(0), 3}, {ts(60), 3}, {ts(180), 4}}},
		{"ten seconds", 10 * time.Second, ts(0), ts(300), []point{{ts(0), 1}, {ts(50), 2}, {ts(60), 3}, {ts(180), 4}}},
		{"seven seconds", 7 * time.Second, ts(0), ts(300), want7},
		{"seconds", time.Second, ts(0), ts(300), []point{{ts(5), 1}, {ts(59), 2}, {ts(61), 3}, {ts(185), 4}}},
		{"start clips data", time.Minute, ts(30), ts(300), []point{{ts(0), 2}, {ts(60), 3}, {ts(180), 4}}},
		{"end is exclusive", time.Minute, ts(0), ts(185), []point{{ts(0), 3}, {ts(60), 3}}},
		{"fractional end includes its second", time.Minute, ts(0), ts(185).Add(time.Millisecond), []point{{ts(0), 3}, {ts(60), 3}, {ts(180), 4}}},
		{"fractional start excludes its second", time.Second, ts(5).Add(time.Millisecond), ts(60), []point{{ts(59), 2}}},
		{"hour", time.Hour, ts(-3600), ts(3600), []point{{ts(0), 10}}},
		{"empty range part", time.Minute, ts(62), ts(180), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, run(tt.period, tt.start, tt.end)); diff != "" {
				t.Errorf("datapoints (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCurrentSecondNotYetVisible(t *testing.T) {
	st, clk := newTestStore(t)
	s := st.Series("e", "v", "c")
	start := clk.Now()
	s.Record(Sample{Status: 200, Instances: 1})
	q := Query{MetricName: Invocations, Statistic: "Sum", Dimensions: fleet("e", "v", "c"), Start: start, End: start.Add(time.Hour)}
	if dps := mustQuery(t, st, q); len(dps) != 0 {
		t.Fatalf("live second visible: %v", dps)
	}
	clk.Advance(1500 * time.Millisecond)
	s.Record(Sample{Status: 200, Instances: 1})
	if dp := value(t, st, q); dp.Value != 1 {
		t.Errorf("after the second ended: got %v, want 1", dp.Value)
	}
}

func TestQueryErrors(t *testing.T) {
	st, clk := newTestStore(t)
	now := clk.Now()
	ok := Query{MetricName: ModelLatency, Statistic: "p99", Dimensions: endpoint("e"), Period: time.Minute, Start: now.Add(-time.Hour), End: now}
	tests := []struct {
		name  string
		edit  func(*Query)
		names string // the error names this
	}{
		{"unknown metric", func(q *Query) { q.MetricName = "Latency" }, `"Latency"`},
		{"bad statistic", func(q *Query) { q.Statistic = "p999" }, `"p999"`},
		{"no statistic", func(q *Query) { q.Statistic = "" }, `Statistic ""`},
		{"percentile of per-instance", func(q *Query) { q.MetricName = InvocationsPerInstance }, InvocationsPerInstance},
		{"zero period", func(q *Query) { q.Period = 0 }, "Period"},
		{"fractional period", func(q *Query) { q.Period = 1500 * time.Millisecond }, "Period"},
		{"negative period", func(q *Query) { q.Period = -time.Minute }, "Period"},
		{"end before start", func(q *Query) { q.Start, q.End = q.End, q.Start }, "End"},
		{"empty range", func(q *Query) { q.Start = q.End }, "End"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := ok
			tt.edit(&q)
			_, err := st.Query(q)
			if err == nil {
				t.Fatal("got no error")
			}
			if kiln.ErrorCode(err) != kiln.EINVALID || !strings.Contains(err.Error(), tt.names) {
				t.Errorf("error %q (code %s) does not name %s", err, kiln.ErrorCode(err), tt.names)
			}
		})
	}
	if _, err := st.Query(ok); err != nil {
		t.Errorf("valid query: %v", err)
	}
}

func TestUnit(t *testing.T) {
	for name, want := range map[string]string{ModelLatency: "Microseconds", OverheadLatency: "Microseconds", Invocations: "None", InvocationsPerInstance: "None"} {
		if got, ok := Unit(name); !ok || got != want {
			t.Errorf("Unit(%s) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := Unit("CPUUtilization"); ok {
		t.Error("Unit(CPUUtilization) ok")
	}
}

func TestListMetrics(t *testing.T) {
	st, clk := newTestStore(t)
	for _, k := range [][3]string{{"e", "A", "c1"}, {"e", "A", "c2"}, {"f", "B", "c3"}} {
		st.Series(k[0], k[1], k[2]).Record(Sample{Status: 200, Instances: 1})
	}
	st.Series("g", "Z", "c0") // no data: not listed
	clk.Advance(time.Second)

	d := func(kv ...string) []kiln.Dimension {
		names := []string{DimEndpoint, DimVariant, DimConfig}
		var out []kiln.Dimension
		for i, v := range kv {
			out = append(out, kiln.Dimension{Name: names[i], Value: v})
		}
		return out
	}
	ids := func(metric string, sets ...[]kiln.Dimension) []MetricID {
		var out []MetricID
		for _, s := range sets {
			out = append(out, MetricID{Namespace: Namespace, MetricName: metric, Dimensions: s})
		}
		return out
	}
	tests := []struct {
		name              string
		namespace, metric string
		dims              map[string]string
		want              []MetricID
	}{
		{"one metric", "", Invocations, nil, ids(Invocations,
			d("e"), d("e", "A"), d("e", "A", "c1"), d("e", "A", "c2"), d("f"), d("f", "B"), d("f", "B", "c3"))},
		{"by variant", Namespace, ModelLatency, map[string]string{DimVariant: "A"}, ids(ModelLatency,
			d("e", "A"), d("e", "A", "c1"), d("e", "A", "c2"))},
		{"having a config", "", Invocation5XXErrors, map[string]string{DimConfig: ""}, ids(Invocation5XXErrors,
			d("e", "A", "c1"), d("e", "A", "c2"), d("f", "B", "c3"))},
		{"unknown dimension", "", Invocations, map[string]string{"Host": ""}, nil},
		{"unknown metric", "", "CPUUtilization", nil, nil},
		{"other namespace", "AWS/EC2", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := st.ListMetrics(tt.namespace, tt.metric, tt.dims)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ListMetrics (-want +got):\n%s", diff)
			}
		})
	}
	all := st.ListMetrics("", "", map[string]string{DimEndpoint: "f"})
	if len(all) != 3*len(metricNames) {
		t.Errorf("every metric of endpoint f: got %d ids, want %d", len(all), 3*len(metricNames))
	}
}

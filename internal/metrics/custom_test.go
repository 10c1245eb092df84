package metrics

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
)

func TestCustom(t *testing.T) {
	clk := clock.NewFake()
	c := NewCustom(clk)
	dims := []kiln.Dimension{{Name: "b", Value: "2"}, {Name: "a", Value: "1"}}
	now := clk.Now().Truncate(time.Minute)
	clk.Advance(now.Add(10 * time.Minute).Sub(clk.Now()))
	put := func(at time.Time, n, sum, lo, hi float64) {
		t.Helper()
		if err := c.Put("App", []CustomDatum{{MetricName: "m", Dimensions: dims, Timestamp: at, SampleCount: n, Sum: sum, Min: lo, Max: hi}}); err != nil {
			t.Fatal(err)
		}
	}
	put(now.Add(1*time.Second), 1, 5, 5, 5)
	put(now.Add(2*time.Second), 3, 3, 0.5, 2)
	put(now.Add(61*time.Second), 1, -1, -1, -1)
	query := func(stat string, period time.Duration, d map[string]string) []Datapoint {
		t.Helper()
		pts, err := c.Query(Query{Namespace: "App", MetricName: "m", Dimensions: d, Statistic: stat, Period: period, Start: now, End: clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return pts
	}
	ab := map[string]string{"a": "1", "b": "2"}
	want := []Datapoint{{Timestamp: now.UTC(), Value: 8, SampleCount: 4}, {Timestamp: now.Add(time.Minute).UTC(), Value: -1, SampleCount: 1}}
	if got := query("Sum", time.Minute, ab); !cmp.Equal(got, want) {
		t.Errorf("Sum per minute: %v, want %v", got, want)
	}
	for stat, v := range map[string]float64{"SampleCount": 5, "Sum": 7, "Average": 7.0 / 5, "Minimum": -1, "Maximum": 5} {
		if got := query(stat, 10*time.Minute, ab); len(got) != 1 || got[0].Value != v {
			t.Errorf("%s over 10 minutes: %v, want %v", stat, got, v)
		}
	}
	// Dimensions match exactly, in any order; a subset is another metric.
	if got := query("Sum", time.Minute, map[string]string{"a": "1"}); len(got) != 0 {
		t.Errorf("a subset of the dimensions: %v, want nothing", got)
	}
	if _, err := c.Query(Query{Namespace: "App", MetricName: "m", Dimensions: ab, Statistic: "p99", Period: time.Minute, Start: now, End: clk.Now()}); err == nil || !strings.Contains(err.Error(), "percentiles") {
		t.Errorf("p99: %v, want an error about percentiles", err)
	}
	ids := c.ListMetrics("App", "", map[string]string{"a": ""})
	if len(ids) != 1 || ids[0].MetricName != "m" || !cmp.Equal(ids[0].Dimensions, []kiln.Dimension{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}}) {
		t.Errorf("ListMetrics: %+v", ids)
	}

	// After SecondRetention, whole minutes still answer; after
	// MinuteRetention, nothing does and the series is gone.
	clk.Advance(SecondRetention)
	if got := query("Sum", time.Minute, ab); !cmp.Equal(got, want) {
		t.Errorf("Sum per minute from the roll-ups: %v, want %v", got, want)
	}
	if got := query("Sum", time.Second, ab); len(got) != 0 {
		t.Errorf("Sum per second past SecondRetention: %v, want nothing", got)
	}
	clk.Advance(MinuteRetention)
	if got := c.ListMetrics("", "", nil); len(got) != 0 {
		t.Errorf("ListMetrics past MinuteRetention: %v", got)
	}
}

func TestCustomSeriesLimit(t *testing.T) {
	c := NewCustom(clock.NewFake())
	data := make([]CustomDatum, MaxCustomSeries)
	for i := range data {
		data[i] = CustomDatum{MetricName: "m", Dimensions: []kiln.Dimension{{Name: "id", Value: strconv.Itoa(i)}}, SampleCount: 1}
	}
	if err := c.Put("App", data); err != nil {
		t.Fatalf("%d series: %v", MaxCustomSeries, err)
	}
	err := c.Put("App", []CustomDatum{{MetricName: "one-too-many", SampleCount: 1}})
	if kiln.ErrorCode(err) != kiln.ELIMIT || !strings.Contains(err.Error(), "at most") {
		t.Errorf("one more series: %v, want an ELIMIT naming the limit", err)
	}
	// A series already kept still takes data.
	if err := c.Put("App", data[:1]); err != nil {
		t.Errorf("data of a kept series: %v", err)
	}
}

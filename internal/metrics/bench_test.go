package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-serve/kiln/internal/clock"
)

// latencies returns n lognormal model latencies around 20 ms, so that
// benchmarks touch many sketch buckets as real traffic does.
func latencies(n int) []time.Duration {
	r := rand.New(rand.NewPCG(3, 5))
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(math.Exp(r.NormFloat64()*0.5+math.Log(20e3)) * 1e3)
	}
	return out
}

// BenchmarkRecord measures one Record on the real clock: reading the
// clock itself, or given the finishing time as the gateway passes it (here
// read once every 256 requests, standing in for the reading the gateway
// makes anyway to measure latency).
func BenchmarkRecord(b *testing.B) {
	lat := latencies(1024)
	for _, given := range []bool{false, true} {
		b.Run(fmt.Sprintf("time-given=%v", given), func(b *testing.B) {
			clk := clock.Real()
			st := New(clk, prometheus.NewRegistry())
			s := st.Series("e", "v", "c")
			var at time.Time
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if given && i&255 == 0 {
					at = clk.Now()
				}
				s.Record(Sample{Status: 200, ModelLatency: lat[i&1023], OverheadLatency: lat[i&1023] / 64, Instances: 2, Time: at})
				i++
			}
		})
	}
}

// BenchmarkRecordParallel measures Record from GOMAXPROCS goroutines, all
// on one series (one hot endpoint) or spread over four, reading the clock
// in Record.
func BenchmarkRecordParallel(b *testing.B) {
	lat := latencies(1024)
	for _, nseries := range []int{1, 4} {
		b.Run(fmt.Sprintf("series=%d", nseries), func(b *testing.B) {
			st := New(clock.Real(), prometheus.NewRegistry())
			series := make([]*Series, nseries)
			for i := range series {
				series[i] = st.Series("e", fmt.Sprint("v", i), "c")
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				s := series[int(next.Add(1))%nseries]
				i := rand.IntN(1024)
				for pb.Next() {
					s.Record(Sample{Status: 200, ModelLatency: lat[i&1023], OverheadLatency: lat[i&1023] / 64, Instances: 2})
					i++
				}
			})
		})
	}
}

// BenchmarkQueryP99 measures the p99 of model latency over the last 60 s,
// as the alarm engine asks each second, at two traffic rates, as one
// 60-second datapoint and as sixty 1-second datapoints.
func BenchmarkQueryP99(b *testing.B) {
	lat := latencies(1 << 16)
	for _, rps := range []int{100, 1000} {
		st, clk := newTestStore(b)
		s := st.Series("e", "v", "c")
		start := clk.Now()
		i := 0
		for range 60 {
			for range rps {
				s.Record(Sample{Status: 200, ModelLatency: lat[i&(1<<16-1)], OverheadLatency: time.Millisecond, Instances: 1})
				i++
			}
			clk.Advance(time.Second)
		}
		for _, period := range []time.Duration{time.Minute, time.Second} {
			b.Run(fmt.Sprintf("rps=%d/period=%v", rps, period), func(b *testing.B) {
				q := Query{MetricName: ModelLatency, Statistic: "p99", Dimensions: variant("e", "v"),
					Period: period, Start: start, End: clk.Now()}
				b.ReportAllocs()
				for b.Loop() {
					dps, err := st.Query(q)
					if err != nil || len(dps) != int(time.Minute/period) {
						b.Fatalf("got %d datapoints, %v", len(dps), err)
					}
				}
			})
		}
	}
}

// traffic fills a series on a fake clock: for each of seconds seconds it
// records perSecond requests with latencies from gen, then advances.
func traffic(s *Series, clk clock.Fake, seconds, perSecond int, gen func(i int) (model, overhead time.Duration)) {
	i := 0
	for range seconds {
		for range perSecond {
			m, o := gen(i)
			s.Record(Sample{Status: 200 + 100*(i%5/4), ModelLatency: m, OverheadLatency: o, Instances: 3})
			i++
		}
		clk.Advance(time.Second)
	}
}

// bucketLatency is a latency in the middle of sketch bucket i.
func bucketLatency(i int) time.Duration {
	return time.Duration(bucketValue(i%sketchBuckets) * 1e3)
}

// seriesBytes reports the heap a series holds once filled by fill,
// averaged over count series.
func seriesBytes(count int, fill func(s *Series, clk clock.Fake)) float64 {
	st, clk := newTestStore(nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range count {
		fill(st.Series("e", "v", fmt.Sprint(i)), clk)
	}
	for _, s := range st.all() {
		s.advance(clk.Now().Unix())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(st)
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(count)
}

// Traffic profiles for the memory measurements. Each runs for a day, so
// that both rings are full.
var memoryProfiles = []struct {
	name  string
	count int // series measured together
	fill  func(s *Series, clk clock.Fake)
}{
	{"empty", 1000, func(s *Series, clk clock.Fake) {}},
	{"typical-10rps", 1, func(s *Series, clk clock.Fake) {
		lat := latencies(4096)
		traffic(s, clk, 86400, 10, func(i int) (time.Duration, time.Duration) { return lat[i&4095], lat[(i+7)&4095] / 64 })
	}},
	{"busy-200rps", 1, func(s *Series, clk clock.Fake) {
		lat := latencies(1 << 16)
		gen := func(i int) (time.Duration, time.Duration) { return lat[i&(1<<16-1)], lat[(i+7)&(1<<16-1)] / 64 }
		// 21 hours at 10 requests a second, which fills each minute
		// about as much as 200 would, then 3 hours at 200 a second.
		traffic(s, clk, 21*3600, 10, gen)
		traffic(s, clk, 3*3600, 200, gen)
	}},
	{"worst", 1, func(s *Series, clk clock.Fake) {
		// Every bucket of both sketches in every minute for 21 hours,
		// then in every second for 3 hours.
		gen := func(i int) (time.Duration, time.Duration) { return bucketLatency(i), bucketLatency(i + 500) }
		for range 21 * 60 {
			traffic(s, clk, 1, sketchBuckets, gen)
			clk.Advance(59 * time.Second)
		}
		traffic(s, clk, 3*3600, sketchBuckets, gen)
	}},
}

// BenchmarkSeriesMemory fills one series with a day of traffic and reports
// the heap it holds (runtime.MemStats before and after). The figure does
// not depend on b.N.
func BenchmarkSeriesMemory(b *testing.B) {
	for _, p := range memoryProfiles {
		b.Run(p.name, func(b *testing.B) {
			var bytes float64
			for b.Loop() {
				bytes = seriesBytes(p.count, p.fill)
			}
			b.ReportMetric(bytes, "bytes/series")
		})
	}
}

// The memory of a series stays within the bounds doc.go states.
func TestSeriesMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("fills a day of traffic: too slow for -short or -race")
	}
	bounds := map[string]float64{"empty": 16 << 10, "typical-10rps": 3 << 20}
	for _, p := range memoryProfiles {
		bound, ok := bounds[p.name]
		if !ok {
			continue // measured by BenchmarkSeriesMemory only
		}
		t.Run(p.name, func(t *testing.T) {
			got := seriesBytes(p.count, p.fill)
			t.Logf("%.0f bytes", got)
			if got > bound {
				t.Errorf("series holds %.0f bytes, want at most %.0f", got, bound)
			}
		})
	}
}

// doc.go states the size of a slot.
func TestSlotSize(t *testing.T) {
	if got := unsafe.Sizeof(slot{}); got != 96 {
		t.Errorf("slot is %d bytes; doc.go says 96", got)
	}
}

package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestSketchConstants(t *testing.T) {
	if got := math.Log(sketchGamma); got != lnGamma {
		t.Errorf("math.Log(%v) = %v, lnGamma = %v", sketchGamma, got, lnGamma)
	}
	if got := int(math.Ceil(math.Log(3.6e9) / lnGamma)); got != maxBucket {
		t.Errorf("bucket of one hour = %d, maxBucket = %d", got, maxBucket)
	}
	if a := (sketchGamma - 1) / (sketchGamma + 1); a > 0.01 {
		t.Errorf("relative accuracy %v > 1%%", a)
	}
}

// The table lookup agrees with the logarithm it replaces, except for values
// within rounding of a bucket bound.
func TestBucketOfMatchesLog(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	check := func(v float64) {
		want := 0
		if v > 1 {
			want = int(min(math.Ceil(math.Log(v)/lnGamma), maxBucket))
		}
		if got := bucketOf(v); got != want {
			if b := math.Exp(float64(min(got, want)) * lnGamma); math.Abs(v-b) > 1e-12*b {
				t.Fatalf("bucketOf(%v) = %d, log gives %d", v, got, want)
			}
		}
	}
	for range 1_000_000 {
		check(math.Exp(r.Float64() * 23))
	}
	for i := range maxBucket {
		b := math.Exp(float64(i) * lnGamma)
		check(b)
		check(math.Nextafter(b, 0))
		check(math.Nextafter(b, math.Inf(1)))
	}
	for _, v := range []float64{0, -1, math.NaN(), 1, 1.0000001, 3.6e9, 5e9, math.Inf(1), 1e300} {
		check(v)
	}
}

// Every value from 1 µs to one hour lands in a bucket whose reported value
// is within 1% of it.
func TestBucketRelativeError(t *testing.T) {
	for v := 1.0; v <= 3.6e9; v *= 1.0007 {
		got := bucketValue(bucketOf(v))
		if err := math.Abs(got-v) / v; err > 0.01 {
			t.Fatalf("value %v reported as %v: relative error %.4f", v, got, err)
		}
	}
}

func TestSketchEncodeRoundTrip(t *testing.T) {
	var m, o dense
	m.reset()
	o.reset()
	want := map[int]uint64{}
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		i := r.IntN(sketchBuckets)
		m.add(i, 1)
		want[i]++
	}
	o.add(maxBucket, 1<<31)
	b := encodeSketches(&m, &o)
	if m.lo <= m.hi || o.lo <= o.hi || slices.ContainsFunc(m.counts[:], func(c uint32) bool { return c != 0 }) {
		t.Fatal("encodeSketches left the dense sketches non-empty")
	}
	got := map[int]uint64{}
	r0 := newPartReader(sketchPart(b, 0))
	for i, c, ok := r0.next(); ok; i, c, ok = r0.next() {
		got[i] += c
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d buckets, want %d", len(got), len(want))
	}
	for i, c := range want {
		if got[i] != c {
			t.Errorf("bucket %d: got %d, want %d", i, got[i], c)
		}
	}
	w := newWide()
	w.addPart(sketchPart(b, 0))
	w.addPart(sketchPart(b, 0))
	for i := range sketchBuckets {
		if w.counts[i] != 2*want[i] {
			t.Fatalf("merged twice, bucket %d: got %d, want %d", i, w.counts[i], 2*want[i])
		}
	}
	if w.lo > w.hi || w.counts[w.lo] == 0 || w.counts[w.hi] == 0 {
		t.Errorf("merged range [%d, %d] does not end on non-empty buckets", w.lo, w.hi)
	}
	var over []uint64
	r1 := newPartReader(sketchPart(b, 1))
	for i, c, ok := r1.next(); ok; i, c, ok = r1.next() {
		if i != maxBucket {
			t.Errorf("overhead bucket %d, want %d", i, maxBucket)
		}
		over = append(over, c)
	}
	if len(over) != 1 || over[0] != 1<<31 {
		t.Errorf("overhead counts %v, want [%d]", over, uint64(1)<<31)
	}
}

// Percentiles answered by the store are within 1% of the exact value of the
// same rank, for several distributions, in one second and merged over many.
func TestPercentileAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	dists := []struct {
		name string
		gen  func() float64 // microseconds
	}{
		{"lognormal", func() float64 { return math.Exp(r.NormFloat64()*1.2 + math.Log(20000)) }},
		{"uniform", func() float64 { return 1 + r.Float64()*2e6 }},
		{"constant", func() float64 { return 12345.678 }},
		{"wide", func() float64 { return math.Exp(r.Float64() * math.Log(3.6e9)) }},
	}
	percentiles := []float64{0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100}
	for _, d := range dists {
		for _, seconds := range []int{1, 37} {
			t.Run(fmt.Sprintf("%s/%ds", d.name, seconds), func(t *testing.T) {
				st, clk := newTestStore(t)
				s := st.Series("e", "v", "c")
				start := clk.Now()
				var all []float64
				for range seconds {
					for range 20000 / seconds {
						lat := time.Duration(d.gen() * 1e3) // whole nanoseconds
						all = append(all, float64(lat)/1e3)
						s.Record(Sample{Status: 200, ModelLatency: lat, OverheadLatency: lat / 10, Instances: 1})
					}
					clk.Advance(time.Second)
				}
				slices.Sort(all)
				n := uint64(len(all))
				for _, p := range percentiles {
					stat := "p" + fmt.Sprint(p)
					dp := value(t, st, Query{MetricName: ModelLatency, Dimensions: fleet("e", "v", "c"),
						Statistic: stat, Period: time.Hour, Start: start, End: clk.Now()})
					exact := all[percentileRank(p/100, n)]
					if err := math.Abs(dp.Value-exact) / exact; err > 0.01 {
						t.Errorf("%s: got %v, exact %v, relative error %.5f > 1%%", stat, dp.Value, exact, err)
					}
				}
			})
		}
	}
}

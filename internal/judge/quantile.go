package judge

import (
	"math"
	"time"
)

// Latency is judged at these quantiles of blue's latency: the median
// catches a fleet that is slower across the board, the 99th percentile one
// whose tail grew.
var levels = [...]float64{0.5, 0.9, 0.99}

const nLevels = len(levels)

// Buckets of the blue latency histogram: bucket i holds latencies in
// (γ^(i-1), γ^i] microseconds, with γ = 1.02 as in the metrics store's
// sketches, from 1 µs to an hour. A threshold is a bucket's upper bound, so
// it is within 2% of the quantile it stands for.
const (
	gamma    = 1.02
	nBuckets = 1114 // ceil(log(3.6e9) / log(1.02)) + 1
)

var logGamma = math.Log(gamma)

// blueLatency tracks the latency distribution of an endpoint's old fleet and
// sets the thresholds of the latency tests from it.
//
// The thresholds are always computed from latencies recorded before the
// request being judged, so they are fixed in advance for it (predictable, in
// the language of martingales), which is all the tests need: under the null
// a green request exceeds any threshold fixed in advance no more often than
// a blue one does.
type blueLatency struct {
	counts [nBuckets]float64
	total  float64
	fresh  int // latencies added since the thresholds were last computed
	// thresholds by level; 0 while blue has too few latencies for it.
	thresholds [nLevels]time.Duration
}

// Thresholds are recomputed every recompute latencies; the histogram
// forgets half of its weight each time it holds decayAt, so that it follows
// a distribution that drifts with the load over a long deployment.
const (
	recompute = 32
	decayAt   = 20000
)

// minSamples is how many blue latencies a level needs before its threshold
// is trusted: 10/(1−q), CloudWatch's rule for percentiles (20 for p50, 100
// for p90, 1000 for p99). Earlier thresholds would still give valid tests,
// only weaker ones.
func minSamples(q float64) float64 { return math.Ceil(10/(1-q) - 1e-6) }

func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if !(us > 1) {
		return 0
	}
	i := int(math.Ceil(math.Log(us) / logGamma))
	return min(i, nBuckets-1)
}

func bucketBound(i int) time.Duration {
	return time.Duration(math.Pow(gamma, float64(i)) * float64(time.Microsecond))
}

func (b *blueLatency) add(d time.Duration) {
	b.counts[bucketOf(d)]++
	b.total++
	b.fresh++
	if b.total >= decayAt {
		for i := range b.counts {
			b.counts[i] *= 0.5
		}
		b.total *= 0.5
	}
	// Recompute every so often, and as soon as a level gets its first
	// threshold, so that the tail is judged from the 1000th latency on.
	if b.fresh >= recompute || b.thresholds[nLevels-1] == 0 && b.total == minSamples(levels[b.active()]) {
		b.update()
	}
}

// active returns the first level without a threshold (nLevels-1 if all have
// one).
func (b *blueLatency) active() int {
	for l := range nLevels {
		if b.thresholds[l] == 0 {
			return l
		}
	}
	return nLevels - 1
}

// update sets the threshold of every level with enough latencies to the
// upper bound of the bucket holding its quantile.
func (b *blueLatency) update() {
	b.fresh = 0
	var cum float64
	l := 0
	for i := 0; i < nBuckets && l < nLevels; i++ {
		cum += b.counts[i]
		for l < nLevels && cum >= levels[l]*b.total {
			if b.total >= minSamples(levels[l]) {
				b.thresholds[l] = bucketBound(i)
			}
			l++
		}
	}
}

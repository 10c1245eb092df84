package metrics

import (
	"encoding/binary"
	"math"
)

// Latency sketch.
//
// Latencies are kept in logarithmic buckets as in DDSketch (C. Masson, J. E.
// Rim, H. K. Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with
// Relative-Error Guarantees", PVLDB 12(12), 2019). Bucket i > 0 counts the
// values v (in microseconds) with γ^(i-1) < v ≤ γ^i, and reports them as
// 2γ^i/(γ+1), which is within α = (γ-1)/(γ+1) of every value in the bucket.
// With γ = 1.02, α ≈ 0.0099: any quantile is reported within 0.99% of the
// exact value of the same rank. Bucket 0 holds everything at or below 1 µs and
// the last bucket everything above γ^(sketchBuckets-2) ≈ 1 hour; estimates
// are clamped to the exact minimum and maximum, so those ends stay honest too.
//
// Because a bucket's bounds do not depend on the data, two sketches merge by
// adding their counts, exactly: a minute's sketch is the sum of its seconds',
// a variant's the sum of its fleets'.
const (
	sketchGamma = 1.02
	// lnGamma is math.Log(sketchGamma), checked by a test.
	lnGamma = 0.01980262729617973
	// maxBucket is ceil(log_γ(3.6e9 µs)), the bucket of one hour.
	maxBucket     = 1112
	sketchBuckets = maxBucket + 1
)

// bucketOf returns the sketch bucket of a latency in microseconds: the
// smallest i with us ≤ γ^i. It is on the recording path, so instead of a
// logarithm it looks up the bucket of the value's binary exponent and top
// mantissa bits, then steps over the one bucket bound that may fall inside
// that cell (cells are 2^-6 ≈ 1.6% wide, buckets 2%).
func bucketOf(us float64) int {
	if !(us > 1) { // also NaN
		return 0
	}
	if us > buckets.bounds[maxBucket-1] {
		return maxBucket
	}
	b := math.Float64bits(us)
	cell := (int(b>>52)-1023)<<cellBits | int(b>>(52-cellBits))&(1<<cellBits-1)
	i := int(buckets.first[cell])
	for us > buckets.bounds[i] {
		i++
	}
	return i
}

const (
	cellBits = 6
	// cells covers the binary exponents 0..31, and 2^32 µs is above the
	// last bound.
	cells = 32 << cellBits
)

// buckets holds bucketOf's read-only tables.
var buckets = newBucketTables()

type bucketTables struct {
	bounds [maxBucket]float64 // bounds[i] = γ^i, the top of bucket i
	first  [cells]uint16      // bucket of each cell's lowest value
}

func newBucketTables() *bucketTables {
	t := new(bucketTables)
	for i := range t.bounds {
		t.bounds[i] = math.Exp(float64(i) * lnGamma)
	}
	for c := range t.first {
		lo := math.Ldexp(1+float64(c&(1<<cellBits-1))/(1<<cellBits), c>>cellBits)
		i := 0
		for i < maxBucket && lo > t.bounds[i] {
			i++
		}
		t.first[c] = uint16(i)
	}
	return t
}

// bucketValue is the value a bucket reports, in microseconds.
func bucketValue(i int) float64 {
	if i <= 0 {
		return 1
	}
	return 2 * math.Exp(float64(i)*lnGamma) / (1 + sketchGamma)
}

// dense is the sketch of the live second: one counter per bucket, and the
// range of buckets touched so that closing a second scans only that range.
type dense struct {
	lo, hi int // touched buckets; lo > hi when empty
	counts [sketchBuckets]uint32
}

func (d *dense) reset() { d.lo, d.hi = sketchBuckets, -1 }

func (d *dense) add(i int, c uint32) {
	d.counts[i] += c
	if i < d.lo {
		d.lo = i
	}
	if i > d.hi {
		d.hi = i
	}
}

// sparseLen is the number of bytes appendSparse will append.
func (d *dense) sparseLen() int {
	n, prev := 0, -1
	for i := d.lo; i <= d.hi; i++ {
		if c := d.counts[i]; c != 0 {
			n += uvarintLen(uint64(i-prev)) + uvarintLen(uint64(c))
			prev = i
		}
	}
	return n
}

// appendSparse appends the non-empty buckets as pairs (index minus the
// previous index, count), both uvarints, and empties d.
func (d *dense) appendSparse(b []byte) []byte {
	prev := -1
	for i := d.lo; i <= d.hi; i++ {
		if c := d.counts[i]; c != 0 {
			b = binary.AppendUvarint(b, uint64(i-prev))
			b = binary.AppendUvarint(b, uint64(c))
			d.counts[i] = 0
			prev = i
		}
	}
	d.reset()
	return b
}

// encodeSketches returns the closed form of a slot's two sketches: the length
// of the model-latency part as a uvarint, that part, then the overhead part.
// It empties both dense sketches.
func encodeSketches(model, overhead *dense) []byte {
	ml := model.sparseLen()
	ol := overhead.sparseLen()
	b := make([]byte, 0, uvarintLen(uint64(ml))+ml+ol)
	b = binary.AppendUvarint(b, uint64(ml))
	b = model.appendSparse(b)
	return overhead.appendSparse(b)
}

// sketchPart returns the encoded part of a closed slot's sketches for one
// latency metric (0 model, 1 overhead).
func sketchPart(b []byte, which int) []byte {
	ml, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < ml {
		return nil
	}
	if which == 0 {
		return b[k : k+int(ml)]
	}
	return b[k+int(ml):]
}

// partReader walks the (bucket, count) pairs of an encoded part.
type partReader struct {
	b []byte
	i int // last bucket
}

func newPartReader(part []byte) partReader { return partReader{b: part, i: -1} }

// next returns the next pair, or false at the end of the part (or at
// anything malformed, which the encoder never writes).
func (r *partReader) next() (i int, c uint64, ok bool) {
	d, ok := r.uvarint()
	if !ok {
		return 0, 0, false
	}
	if c, ok = r.uvarint(); !ok {
		return 0, 0, false
	}
	r.i += int(d)
	if d == 0 || d > sketchBuckets || r.i > maxBucket {
		return 0, 0, false
	}
	return r.i, c, true
}

func (r *partReader) uvarint() (uint64, bool) {
	if len(r.b) > 0 && r.b[0] < 0x80 { // nearly every delta and count
		x := uint64(r.b[0])
		r.b = r.b[1:]
		return x, true
	}
	x, k := binary.Uvarint(r.b)
	if k <= 0 {
		return 0, false
	}
	r.b = r.b[k:]
	return x, true
}

// wide is a sketch being merged at query time, with 64-bit counts.
type wide struct {
	lo, hi int
	counts [sketchBuckets]uint64
}

func newWide() *wide {
	w := new(wide)
	w.lo, w.hi = sketchBuckets, -1
	return w
}

// addPart adds an encoded part. It is the inner loop of every percentile
// query, so it decodes in place rather than through a partReader.
func (w *wide) addPart(part []byte) {
	i, first := -1, -1
	for k := 0; k < len(part); {
		d := uint64(part[k])
		if d < 0x80 {
			k++
		} else {
			n := 0
			if d, n = binary.Uvarint(part[k:]); n <= 0 {
				break
			}
			k += n
		}
		if k >= len(part) {
			break
		}
		c := uint64(part[k])
		if c < 0x80 {
			k++
		} else {
			n := 0
			if c, n = binary.Uvarint(part[k:]); n <= 0 {
				break
			}
			k += n
		}
		i += int(d)
		if d == 0 || d > sketchBuckets || i > maxBucket {
			break
		}
		w.counts[i] += c
		if first < 0 {
			first = i
		}
	}
	if first >= 0 {
		w.lo, w.hi = min(w.lo, first), max(w.hi, i)
	}
}

func (w *wide) reset() {
	if w.lo <= w.hi {
		clear(w.counts[w.lo : w.hi+1])
	}
	w.lo, w.hi = sketchBuckets, -1
}

// quantile returns the value of rank floor(q·(n-1)) (0-based, in ascending
// order) among the n values in w, clamped to [min, max]; the first and last
// ranks are min and max exactly.
func (w *wide) quantile(q float64, n uint64, min, max float64) float64 {
	if n == 0 {
		return math.NaN()
	}
	rank := percentileRank(q, n)
	switch rank {
	case 0:
		return min
	case n - 1:
		return max
	}
	var cum uint64
	v := max
	for i := w.lo; i <= w.hi; i++ {
		cum += w.counts[i]
		if cum > rank {
			v = bucketValue(i)
			break
		}
	}
	return math.Min(math.Max(v, min), max)
}

// percentileRank is the 0-based rank of quantile q (0..1) among n values.
func percentileRank(q float64, n uint64) uint64 {
	r := uint64(q * float64(n-1))
	if r > n-1 {
		r = n - 1
	}
	return r
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

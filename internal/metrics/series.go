package metrics

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-serve/kiln/internal/clock"
)

// Retention of the two resolutions. A closed second stays queryable for
// SecondRetention; every closed minute, rolled up from its seconds, for
// MinuteRetention.
const (
	SecondRetention = 3 * time.Hour
	MinuteRetention = 24 * time.Hour

	secondRetentionSecs = int64(SecondRetention / time.Second)
	minuteRetentionSecs = int64(MinuteRetention / time.Second)
)

// Sample is what the gateway knows about one finished invocation.
type Sample struct {
	// Status is the HTTP status the client got: 4xx counts towards
	// Invocation4XXErrors, 5xx towards Invocation5XXErrors.
	Status int
	// ModelError is true when the model answered non-2xx, the connection to
	// it failed or it timed out (InvocationModelErrors).
	ModelError bool
	// ModelLatency is the time the model took; OverheadLatency the time the
	// gateway added. Negative durations count as zero.
	ModelLatency, OverheadLatency time.Duration
	// Instances is the number of instances in the variant at the time; the
	// request counts 1/Instances towards InvocationsPerInstance. Zero or
	// less counts as one.
	Instances int
	// Time is when the invocation finished, read from the Store's clock. If
	// zero, Record reads the clock itself; a caller that has just read it
	// (to measure the latencies) saves a second reading by passing it. A
	// time before the current second counts in the current second.
	Time time.Time
}

// Series holds the metrics of one fleet: an endpoint's variant served by
// one endpoint config. Record is safe for concurrent use; the gateway
// resolves a *Series once per routing table and records every request in it.
type Series struct {
	endpoint, variant, config string
	clk                       clock.Clock

	// cur is the live second: Records accumulate into the shards until the
	// clock passes it, and then the first caller closes it (advance).
	cur    atomic.Int64
	mask   uint32
	shards []shard
	// Every Record reads the fields above; flushes write the ones below.
	_ [24]byte

	// sketchMu serialises the shards' flushes into live. advance, which
	// holds every shard lock, needs no more.
	sketchMu sync.Mutex
	live     [2]dense // model and overhead latency of the live second

	mu       sync.RWMutex // guards the fields below; Record never takes it
	secs     ring         // closed seconds, oldest first
	mins     ring         // closed minutes, oldest first
	rolledTo int64        // seconds before this are rolled into mins
	totals   promTotals   // since the series was created, for Prometheus

	forgotten bool // guarded by the Store's mu
}

// shardBuf is how many sketch indices a shard buffers before it takes
// sketchMu to add them to the live sketches.
const shardBuf = 64

// shard is one stripe of the live second. Record locks a single shard, so
// concurrent Records on a series contend only when they pick the same one.
type shard struct {
	mu               sync.Mutex
	n, e4, e5, em    uint32
	instMin, instMax uint32
	perInst          float64
	lat              [2]struct{ sum, min, max int64 } // nanoseconds
	nbuf             int
	buf              [shardBuf]uint32 // model bucket<<16 | overhead bucket
	_                [64]byte         // no false sharing with the next shard
}

func (sh *shard) reset() {
	sh.n, sh.e4, sh.e5, sh.em = 0, 0, 0, 0
	sh.instMin, sh.instMax = math.MaxUint32, 0
	sh.perInst = 0
	for i := range sh.lat {
		sh.lat[i].sum, sh.lat[i].min, sh.lat[i].max = 0, math.MaxInt64, 0
	}
}

func newSeries(clk clock.Clock, endpoint, variant, config string, shards int) *Series {
	s := &Series{
		endpoint: endpoint, variant: variant, config: config,
		clk:    clk,
		mask:   uint32(shards - 1),
		shards: make([]shard, shards),
		secs:   ring{max: int(secondRetentionSecs) + 2},
		mins:   ring{max: int(minuteRetentionSecs/60) + 2},
	}
	for i := range s.shards {
		s.shards[i].reset()
	}
	s.live[0].reset()
	s.live[1].reset()
	s.cur.Store(clk.Now().Unix())
	return s
}

// Record adds one invocation to the current second. It does not allocate
// and holds one shard lock for a few dozen instructions. Once a second, one
// caller closes the previous second (and once a minute rolls up the
// previous minute) before recording.
func (s *Series) Record(r Sample) {
	var now int64
	if r.Time.IsZero() {
		now = s.clk.Now().Unix()
	} else {
		now = r.Time.Unix()
	}
	if now > s.cur.Load() {
		s.advance(now)
	}
	modelNs := max(int64(r.ModelLatency), 0)
	overNs := max(int64(r.OverheadLatency), 0)
	packed := uint32(bucketOf(float64(modelNs)*1e-3))<<16 | uint32(bucketOf(float64(overNs)*1e-3))
	inst := uint32(min(max(r.Instances, 1), math.MaxUint32))

	sh := s.lockShard()
	sh.n++
	switch {
	case r.Status >= 400 && r.Status < 500:
		sh.e4++
	case r.Status >= 500 && r.Status < 600:
		sh.e5++
	}
	if r.ModelError {
		sh.em++
	}
	sh.perInst += 1 / float64(inst)
	sh.instMin = min(sh.instMin, inst)
	sh.instMax = max(sh.instMax, inst)
	sh.lat[0].sum += modelNs
	sh.lat[0].min = min(sh.lat[0].min, modelNs)
	sh.lat[0].max = max(sh.lat[0].max, modelNs)
	sh.lat[1].sum += overNs
	sh.lat[1].min = min(sh.lat[1].min, overNs)
	sh.lat[1].max = max(sh.lat[1].max, overNs)
	sh.buf[sh.nbuf] = packed
	sh.nbuf++
	if sh.nbuf == shardBuf {
		s.sketchMu.Lock()
		s.flush(sh)
		s.sketchMu.Unlock()
	}
	sh.mu.Unlock()
}

// lockShard locks and returns a shard: the first one when it is free, so a
// lightly used series touches one shard only, else any free one.
func (s *Series) lockShard() *shard {
	sh := &s.shards[0]
	if sh.mu.TryLock() {
		return sh
	}
	if s.mask == 0 {
		sh.mu.Lock()
		return sh
	}
	start := rand.Uint32()
	for i := uint32(0); i <= s.mask; i++ {
		sh = &s.shards[(start+i)&s.mask]
		if sh.mu.TryLock() {
			return sh
		}
	}
	sh.mu.Lock()
	return sh
}

// flush moves a shard's buffered sketch indices into the live sketches. The
// caller holds the shard's lock and either sketchMu or every shard lock.
func (s *Series) flush(sh *shard) {
	for _, p := range sh.buf[:sh.nbuf] {
		s.live[0].add(int(p>>16), 1)
		s.live[1].add(int(p&0xffff), 1)
	}
	sh.nbuf = 0
}

// advance closes the live second if the clock has passed it, rolls up the
// minutes that have ended and drops what is older than the retention.
func (s *Series) advance(now int64) {
	for i := range s.shards {
		s.shards[i].mu.Lock()
	}
	if cur := s.cur.Load(); now > cur {
		s.mu.Lock()
		s.closeLive(cur)
		s.cur.Store(now)
		s.rollMinutes(now)
		s.secs.evictBefore(now - secondRetentionSecs)
		s.mins.evictBefore(now - minuteRetentionSecs)
		s.mu.Unlock()
	}
	for i := range s.shards {
		s.shards[i].mu.Unlock()
	}
}

// closeLive turns the live second t into a slot. The caller holds every
// shard lock and mu.
func (s *Series) closeLive(t int64) {
	sl := slot{t: t}
	for i := range s.shards {
		sh := &s.shards[i]
		s.flush(sh)
		if sh.n == 0 {
			continue
		}
		part := slot{
			n: sh.n, e4: sh.e4, e5: sh.e5, em: sh.em,
			instMin: sh.instMin, instMax: sh.instMax, perInst: sh.perInst,
		}
		for j := range part.lat {
			part.lat[j] = latStats{
				sum: float64(sh.lat[j].sum) / 1e3,
				min: float32(float64(sh.lat[j].min) / 1e3),
				max: float32(float64(sh.lat[j].max) / 1e3),
			}
		}
		sl.merge(&part)
		sh.reset()
	}
	if sl.n == 0 {
		return
	}
	s.totals.add(&sl, &s.live)
	sl.sketch = encodeSketches(&s.live[0], &s.live[1])
	s.secs.push(sl)
}

// rollMinutes merges the closed seconds of every minute that has ended into
// a minute slot. It uses the (empty) live sketches as scratch space, so the
// caller holds every shard lock and mu.
func (s *Series) rollMinutes(now int64) {
	limit := floorDiv(now, 60) * 60
	if limit <= s.rolledTo {
		return
	}
	var m slot
	for i := s.secs.search(s.rolledTo); i < s.secs.len(); i++ {
		sec := s.secs.at(i)
		if sec.t >= limit {
			break
		}
		if mt := floorDiv(sec.t, 60) * 60; m.n == 0 || mt != m.t {
			if m.n > 0 {
				s.closeMinute(&m)
			}
			m = slot{t: mt}
		}
		m.merge(sec)
		for j := range s.live {
			r := newPartReader(sketchPart(sec.sketch, j))
			for b, c, ok := r.next(); ok; b, c, ok = r.next() {
				s.live[j].add(b, uint32(c))
			}
		}
	}
	if m.n > 0 {
		s.closeMinute(&m)
	}
	s.rolledTo = limit
}

func (s *Series) closeMinute(m *slot) {
	m.sketch = encodeSketches(&s.live[0], &s.live[1])
	s.mins.push(*m)
}

// snapshot brings the series up to now and appends copies of its closed
// slots in [from, to): seconds only, or, with minutes set, minutes for the
// part of the range older than the second retention and seconds after.
func (s *Series) snapshot(dst []slot, now, from, to int64, minutes bool) []slot {
	s.advance(now)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if minutes {
		split := ceilDiv(now-secondRetentionSecs, 60) * 60
		dst = s.mins.appendRange(dst, floorDiv(from, 60)*60, min(to, split))
		from = max(from, split)
	}
	return s.secs.appendRange(dst, from, to)
}

// empty reports whether the series holds no data at all.
func (s *Series) empty() bool {
	for i := range s.shards {
		s.shards[i].mu.Lock()
	}
	defer func() {
		for i := range s.shards {
			s.shards[i].mu.Unlock()
		}
	}()
	for i := range s.shards {
		if s.shards[i].n > 0 {
			return false
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.secs.len() == 0 && s.mins.len() == 0
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

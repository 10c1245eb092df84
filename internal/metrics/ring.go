package metrics

// slot is one closed second (or minute) of a series: the statistics of every
// metric over the requests recorded in it. Slots exist only for intervals
// with at least one request.
type slot struct {
	t                int64  // Unix second at which the interval starts
	n                uint32 // requests; every metric's SampleCount
	e4, e5, em       uint32 // requests that were 4xx, 5xx, model errors
	instMin, instMax uint32 // fewest and most instances seen
	perInst          float64
	lat              [2]latStats // model, overhead
	sketch           []byte      // see encodeSketches; never modified once set
}

// latStats are a latency's exact statistics in microseconds; the count is
// the slot's n.
type latStats struct {
	sum      float64
	min, max float32
}

// merge adds o's statistics to s.
func (s *slot) merge(o *slot) {
	if s.n == 0 {
		s.instMin, s.instMax = o.instMin, o.instMax
		s.lat[0].min, s.lat[0].max = o.lat[0].min, o.lat[0].max
		s.lat[1].min, s.lat[1].max = o.lat[1].min, o.lat[1].max
	} else {
		s.instMin = min(s.instMin, o.instMin)
		s.instMax = max(s.instMax, o.instMax)
		for i := range s.lat {
			s.lat[i].min = min(s.lat[i].min, o.lat[i].min)
			s.lat[i].max = max(s.lat[i].max, o.lat[i].max)
		}
	}
	s.n += o.n
	s.e4 += o.e4
	s.e5 += o.e5
	s.em += o.em
	s.perInst += o.perInst
	s.lat[0].sum += o.lat[0].sum
	s.lat[1].sum += o.lat[1].sum
}

// ring is a time-ordered queue of slots in a circular buffer that grows up
// to max entries and shrinks again when mostly empty, so an idle series
// costs little and a busy one is bounded.
type ring struct {
	buf     []slot
	head, n int
	max     int
}

func (r *ring) len() int { return r.n }

func (r *ring) at(i int) *slot { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) push(s slot) {
	if r.n == len(r.buf) {
		if r.n >= r.max {
			r.pop() // cannot happen while eviction keeps up; bounds memory regardless
		} else {
			r.resize(min(max(16, 2*len(r.buf)), r.max))
		}
	}
	r.buf[(r.head+r.n)%len(r.buf)] = s
	r.n++
}

func (r *ring) pop() {
	*r.at(0) = slot{} // release the sketch
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	if len(r.buf) > 64 && r.n < len(r.buf)/4 {
		r.resize(len(r.buf) / 2)
	}
}

func (r *ring) resize(c int) {
	buf := make([]slot, c)
	for i := 0; i < r.n; i++ {
		buf[i] = *r.at(i)
	}
	r.buf, r.head = buf, 0
}

// evictBefore drops the slots that start before t.
func (r *ring) evictBefore(t int64) {
	for r.n > 0 && r.at(0).t < t {
		r.pop()
	}
}

// search returns the index of the first slot that starts at or after t.
func (r *ring) search(t int64) int {
	lo, hi := 0, r.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.at(m).t < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// appendRange appends copies of the slots starting in [from, to) to dst.
func (r *ring) appendRange(dst []slot, from, to int64) []slot {
	for i := r.search(from); i < r.n; i++ {
		s := r.at(i)
		if s.t >= to {
			break
		}
		dst = append(dst, *s)
	}
	return dst
}

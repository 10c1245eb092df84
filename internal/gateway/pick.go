package gateway

// The routing decision: variant by weight, fleet by share, instance by least
// outstanding requests. It reads only the immutable table and the instances'
// atomic counters, and allocates nothing.

// scanMax is the fleet size up to which the instance with the fewest
// outstanding requests is found by looking at all of them; larger fleets use
// the power of two random choices, which is nearly as good and O(1).
const scanMax = 8

// maxPickAttempts bounds how often a request picks again after the instance
// it chose began draining. One retry suffices unless tables are swapped
// faster than a request can pick; the bound keeps a pathological update
// storm from spinning a request forever.
const maxPickAttempts = 8

// unit turns 64 random bits into a float64 in [0, 1).
func unit(r uint64) float64 { return float64(r>>11) * 0x1p-53 }

// below returns a number in [0, n) from 32 random bits.
func below(r uint32, n int) int { return int(uint64(r) * uint64(n) >> 32) }

// pick chooses an instance of the endpoint, in the given variant when v is
// not nil, avoiding exclude. It returns nils when no instance is routable.
func pick(ep *endpointTable, v *variantTable, exclude *instance, rnd func() uint64) (*variantTable, *fleetTable, *instance) {
	if v != nil {
		f, in := pickFleet(v, exclude, rnd)
		if in == nil {
			return nil, nil, nil
		}
		return v, f, in
	}
	n := len(ep.weighted)
	if n == 0 {
		return nil, nil, nil
	}
	first := 0
	if n > 1 {
		x := unit(rnd()) * ep.totalW
		for first < n-1 && x >= ep.cumW[first] {
			first++
		}
	}
	// Only the retry after a socket error (exclude != nil) can find the
	// chosen variant empty; then any other variant will do.
	for i := range n {
		v := ep.weighted[(first+i)%n]
		if f, in := pickFleet(v, exclude, rnd); in != nil {
			return v, f, in
		}
	}
	return nil, nil, nil
}

func pickFleet(v *variantTable, exclude *instance, rnd func() uint64) (*fleetTable, *instance) {
	n := len(v.fleets)
	if n == 0 {
		return nil, nil
	}
	first := 0
	if n > 1 {
		r := rnd()
		if v.uniform {
			first = below(uint32(r), n)
		} else {
			x := unit(r) * v.totalS
			for first < n-1 && x >= v.cumS[first] {
				first++
			}
		}
	}
	for i := range n {
		f := v.fleets[(first+i)%n]
		if in := leastOutstanding(f.instances, exclude, rnd); in != nil {
			return f, in
		}
	}
	return nil, nil
}

// leastOutstanding returns the instance with the fewest requests in flight,
// ties broken at random, or nil if exclude is the only one.
func leastOutstanding(ins []*instance, exclude *instance, rnd func() uint64) *instance {
	n := len(ins)
	switch {
	case n == 0:
		return nil
	case n == 1:
		if ins[0] == exclude {
			return nil
		}
		return ins[0]
	case n <= scanMax:
		start := below(uint32(rnd()), n)
		var best *instance
		var bestN int64
		for i := range n {
			in := ins[(start+i)%n]
			if in == exclude {
				continue
			}
			if c := in.inflight.Load(); best == nil || c < bestN {
				best, bestN = in, c
			}
		}
		return best
	default:
		r := rnd()
		i := below(uint32(r), n)
		j := below(uint32(r>>32), n-1)
		if j >= i {
			j++
		}
		a, b := ins[i], ins[j]
		if a == exclude {
			return b
		}
		if b == exclude {
			return a
		}
		if b.inflight.Load() < a.inflight.Load() {
			return b
		}
		return a
	}
}

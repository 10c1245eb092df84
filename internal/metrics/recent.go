package metrics

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Summary is the traffic of a fleet, or of a variant's fleets together,
// over a recent window.
type Summary struct {
	Invocations           int64
	Invocation4XXErrors   int64
	Invocation5XXErrors   int64
	InvocationModelErrors int64
	// Model latency percentiles (within 1%); zero without invocations.
	ModelLatencyP50, ModelLatencyP90, ModelLatencyP99 time.Duration
}

// ConfigSummary is the Summary of one fleet of a variant.
type ConfigSummary struct {
	EndpointConfigName string
	Summary
}

// VariantSummary is the Summary of a variant over all its fleets, with each
// fleet's own.
type VariantSummary struct {
	VariantName string
	Summary
	Configs []ConfigSummary // sorted by name
}

// Recent summarises an endpoint's traffic over the window before now (whole
// seconds, at least one; the current second is not yet counted), variant by
// variant and fleet by fleet, sorted by name. A fleet that has been
// forgotten appears only if it had traffic in the window.
func (st *Store) Recent(endpoint string, window time.Duration) []VariantSummary {
	now := st.clk.Now().Unix()
	st.gc(now)
	w := max(int64((window+time.Second-1)/time.Second), 1)
	from := now - w

	st.mu.RLock()
	type member struct {
		s         *Series
		forgotten bool
	}
	byVariant := map[string][]member{}
	for k, s := range st.series {
		if k.endpoint == endpoint {
			byVariant[k.variant] = append(byVariant[k.variant], member{s, s.forgotten})
		}
	}
	st.mu.RUnlock()

	var out []VariantSummary
	vsk, csk := newWide(), newWide()
	var buf []slot
	for variant, members := range byVariant {
		vs := VariantSummary{VariantName: variant}
		var va agg
		vsk.reset()
		for _, m := range members {
			buf = m.s.snapshot(buf[:0], now, from, now, true)
			var ca agg
			csk.reset()
			for i := range buf {
				ca.add(&buf[i])
				va.add(&buf[i])
				part := sketchPart(buf[i].sketch, 0)
				csk.addPart(part)
				vsk.addPart(part)
			}
			if ca.n == 0 && m.forgotten {
				continue
			}
			vs.Configs = append(vs.Configs, ConfigSummary{EndpointConfigName: m.s.config, Summary: ca.summary(csk)})
		}
		if len(vs.Configs) == 0 {
			continue
		}
		slices.SortFunc(vs.Configs, func(a, b ConfigSummary) int { return cmp.Compare(a.EndpointConfigName, b.EndpointConfigName) })
		vs.Summary = va.summary(vsk)
		out = append(out, vs)
	}
	slices.SortFunc(out, func(a, b VariantSummary) int { return cmp.Compare(a.VariantName, b.VariantName) })
	return out
}

func (a *agg) summary(sk *wide) Summary {
	s := Summary{
		Invocations:           int64(a.n),
		Invocation4XXErrors:   int64(a.e4),
		Invocation5XXErrors:   int64(a.e5),
		InvocationModelErrors: int64(a.em),
	}
	if a.n > 0 {
		l := a.lat[0]
		d := func(q float64) time.Duration {
			return time.Duration(math.Round(sk.quantile(q, a.n, l.min, l.max) * 1e3))
		}
		s.ModelLatencyP50, s.ModelLatencyP90, s.ModelLatencyP99 = d(.5), d(.9), d(.99)
	}
	return s
}

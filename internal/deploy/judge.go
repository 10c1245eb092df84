package deploy

import (
	"fmt"
	"time"
)

// JudgeVerdict is what a judge alarm (an alarm with a kiln.JudgeSpec, which
// compares the new fleets with the old ones while both take traffic) tells
// the controller beyond its state.
type JudgeVerdict struct {
	// Wait: the judge has no verdict yet and asks a bake whose time is up
	// to wait for one rather than end blind (JudgeSpec.InsufficientData
	// "wait"). The deployment's MaximumExecutionTimeoutInSeconds still
	// applies, and rolls it back.
	Wait bool
	// Promote: the judge has shown that the new fleets are not worse than
	// the old ones (JudgeSpec.EarlyPromotion): the bake may end early.
	Promote bool
}

// Judges reports the verdicts of judge alarms by alarm name, false for an
// alarm that is not a judge or has not been evaluated.
type Judges interface {
	Verdict(alarm string) (JudgeVerdict, bool)
}

// comparing reports whether old and new fleets both take traffic: the bakes
// a judge speaks to. The final bake, with all traffic on the new fleets, is
// not one of them.
func (m *machine) comparing() bool {
	s := m.greenShare()
	return s > 0 && s < 1
}

// judgeWait returns the first rollback alarm whose judge holds a bake that
// is over for evidence, or "".
func (m *machine) judgeWait() string {
	if !m.comparing() {
		return ""
	}
	for _, name := range m.d.DeploymentConfig.AlarmNames() {
		if m.obs.Judges[name].Wait {
			return name
		}
	}
	return ""
}

// judgePromote returns a judge alarm that ends the bake early, or "": every
// judge among the rollback alarms must say Promote.
func (m *machine) judgePromote() string {
	if !m.comparing() {
		return ""
	}
	first := ""
	for _, name := range m.d.DeploymentConfig.AlarmNames() {
		v, ok := m.obs.Judges[name]
		if !ok {
			continue
		}
		if !v.Promote {
			return ""
		}
		if first == "" {
			first = name
		}
	}
	return first
}

// holdBake keeps a bake whose time is up going while a judge waits for
// evidence; the variants say so, once.
func (m *machine) holdBake(vs []variant, s step, alarm string) {
	m.holdWith(vs, s, fmt.Sprintf("Baking beyond %d seconds: waiting for judge alarm %q to reach a verdict.", int(s.bake/time.Second), alarm))
}

// holdWith keeps a bake whose time is up going; the variants say why, once.
func (m *machine) holdWith(vs []variant, s step, msg string) {
	st := m.bakeStatuses(vs, s)
	same := true
	for v, x := range st {
		x.StatusMessage = msg
		st[v] = x
		for _, pv := range m.ep.ProductionVariants {
			if pv.VariantName == v && (len(pv.VariantStatus) == 0 || pv.VariantStatus[0].StatusMessage != msg) {
				same = false
			}
		}
	}
	if !same {
		m.transition(st)
	}
}

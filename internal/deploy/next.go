package deploy

import (
	"fmt"
	"time"

	"github.com/kiln-serve/kiln"
)

// Next is the deployment controller's state machine. Given an endpoint
// record, what is observed of its fleets and alarms, and the time, it
// returns the record as it must be written next, the history events of that
// transition, and when the endpoint must be looked at again at the latest
// (the end of a bake, the execution timeout; zero when only a change in what
// is observed can move it on, now when it can move on at once).
//
// Next is pure: it reads nothing but its arguments and changes none of
// them. When nothing is to be done it returns ep itself and no events. It
// makes one transition per call, each of them safe to act on alone, so the
// caller writes the record (which is the action: the fleet manager and the
// gateway follow it) and calls Next again. Records it cannot make sense of
// are reported as errors, never guessed at.
func Next(ep kiln.Endpoint, obs Observation, now time.Time) (kiln.Endpoint, []kiln.HistoryEvent, time.Time, error) {
	next, events, wake, changed, err := advance(ep, obs, now)
	if err != nil || !changed {
		return ep, nil, wake, err
	}
	return next, events, wake, nil
}

func advance(ep kiln.Endpoint, obs Observation, now time.Time) (kiln.Endpoint, []kiln.HistoryEvent, time.Time, bool, error) {
	if ep.Deployment == nil {
		return ep, nil, time.Time{}, false, nil
	}
	m := &machine{ep: cloneEndpoint(ep), obs: obs, now: now}
	m.d = m.ep.Deployment
	var err error
	switch m.d.Kind {
	case kiln.DeployCreate:
		err = m.create()
	case kiln.DeployBlueGreen, kiln.DeployRolling, kiln.DeployWeights:
		err = m.update()
	default:
		err = fmt.Errorf("deployment %s of endpoint %s has unknown kind %q", m.d.ID, ep.EndpointName, m.d.Kind)
	}
	if err != nil {
		return ep, nil, time.Time{}, false, err
	}
	if !m.changed {
		return ep, nil, m.wake, false, nil
	}
	m.ep.LastModifiedTime = now
	m.refreshCounts()
	return m.ep, m.events, m.wake, true, nil
}

// machine holds one call of Next: a copy of the record being changed.
type machine struct {
	ep      kiln.Endpoint
	d       *kiln.Deployment // m.ep.Deployment until the deployment ends
	obs     Observation
	now     time.Time
	events  []kiln.HistoryEvent
	wake    time.Time
	changed bool
}

// goal is the routing state a step asks for. Fleets absent from it are
// retired: their share drops to 0 at once and they are removed afterwards.
type goal struct {
	fleets  map[string]fleetGoal
	weights map[string]float64 // CurrentWeight by variant
}

type fleetGoal struct {
	running int     // InstanceCount
	active  int     // ActiveInstanceCount
	share   float64 // TrafficShare
}

func newGoal() goal {
	return goal{fleets: map[string]fleetGoal{}, weights: map[string]float64{}}
}

func (g goal) set(id string, running, active int, share float64) {
	if id != "" {
		g.fleets[id] = fleetGoal{running: running, active: active, share: share}
	}
}

// counts holds a number of instances by variant.
type counts map[string]int

func (c *counts) add(variant string, n int) {
	if *c == nil {
		*c = counts{}
	}
	(*c)[variant] += n
}

// The four stages of reaching a goal, in the only safe order: launch what
// is missing, wait until it is healthy, move traffic, and only then stop
// what no longer has any.

// grow raises InstanceCount where the goal wants more instances; the new
// ones get no traffic until route.
func (m *machine) grow(g goal) counts {
	var launched counts
	for i := range m.ep.Fleets {
		f := &m.ep.Fleets[i]
		if fg, ok := g.fleets[f.ID]; ok && fg.running > f.InstanceCount {
			launched.add(f.VariantName, fg.running-f.InstanceCount)
			f.InstanceCount = fg.running
		}
	}
	if launched != nil {
		m.changed = true
	}
	return launched
}

// ready reports whether every instance the goal keeps that takes no traffic
// yet has passed its health check.
func (m *machine) ready(g goal) bool {
	for _, f := range m.ep.Fleets {
		fg, ok := g.fleets[f.ID]
		if ok && fg.running > f.ActiveInstanceCount && m.obs.Fleets[f.ID].Healthy < min(f.InstanceCount, fg.running) {
			return false
		}
	}
	return true
}

// route writes the goal's active counts, shares and variant weights. It
// reports the variants whose routing changed.
func (m *machine) route(g goal) map[string]bool {
	var moved map[string]bool
	mark := func(v string) {
		if moved == nil {
			moved = map[string]bool{}
		}
		moved[v] = true
	}
	// A variant's fleets keep shares that add up to 1: a fleet on its way
	// out keeps its share when no fleet of its variant stays (its variant's
	// weight is what keeps traffic off it).
	staying := map[string]bool{}
	for _, f := range m.ep.Fleets {
		if _, ok := g.fleets[f.ID]; ok {
			staying[f.VariantName] = true
		}
	}
	for i := range m.ep.Fleets {
		f := &m.ep.Fleets[i]
		fg, ok := g.fleets[f.ID]
		switch {
		case ok && (f.ActiveInstanceCount != fg.active || f.TrafficShare != fg.share):
			f.ActiveInstanceCount, f.TrafficShare = fg.active, fg.share
			mark(f.VariantName)
		case !ok && staying[f.VariantName] && f.TrafficShare != 0:
			f.TrafficShare = 0
			mark(f.VariantName)
		}
	}
	for i := range m.ep.ProductionVariants {
		pv := &m.ep.ProductionVariants[i]
		if w, ok := g.weights[pv.VariantName]; ok && pv.CurrentWeight != w {
			pv.CurrentWeight = w
			mark(pv.VariantName)
		}
	}
	if moved != nil {
		m.changed = true
	}
	return moved
}

// shrink lowers InstanceCount to the goal and removes the fleets it does not
// list. It reports the instances stopped by variant, and whether anything
// changed (a fleet that never ran an instance stops none).
func (m *machine) shrink(g goal) (counts, bool) {
	var stopped counts
	changed := false
	kept := make([]kiln.Fleet, 0, len(m.ep.Fleets))
	for _, f := range m.ep.Fleets {
		fg, ok := g.fleets[f.ID]
		if !ok {
			stopped.add(f.VariantName, f.InstanceCount)
			changed = true
			continue
		}
		if f.InstanceCount > fg.running {
			stopped.add(f.VariantName, f.InstanceCount-fg.running)
			f.InstanceCount = fg.running
			f.ActiveInstanceCount = min(f.ActiveInstanceCount, fg.running)
			changed = true
		}
		kept = append(kept, f)
	}
	if changed {
		m.ep.Fleets = kept
		m.changed = true
	}
	return stopped, changed
}

// ---- bookkeeping

func (m *machine) fleet(id string) *kiln.Fleet {
	for i := range m.ep.Fleets {
		if m.ep.Fleets[i].ID == id {
			return &m.ep.Fleets[i]
		}
	}
	return nil
}

// enter moves the deployment to a phase of its current step.
func (m *machine) enter(phase string) {
	m.d.Phase = phase
	m.d.PhaseStartTime = m.now
	m.changed = true
}

func (m *machine) wakeAt(t time.Time) {
	if t.IsZero() {
		return
	}
	if m.wake.IsZero() || t.Before(m.wake) {
		m.wake = t
	}
}

func (m *machine) wakeNow() { m.wakeAt(m.now) }

// event records a transition in the history.
func (m *machine) event(phase, msg string) {
	ev := kiln.HistoryEvent{Time: m.now, Phase: phase, Message: msg, GreenShare: m.greenShare()}
	if m.d != nil {
		ev.DeploymentID = m.d.ID
		ev.Step = m.d.Step
		ev.Cause = m.d.RollbackCause
	}
	m.events = append(m.events, ev)
	m.changed = true
}

// greenShare is the share of the endpoint's traffic on the deployment's new
// fleets, each variant counted by its current weight.
func (m *machine) greenShare() float64 {
	if m.d == nil || m.d.Kind == kiln.DeployWeights || m.d.Kind == kiln.DeployCreate {
		return 0
	}
	green := map[string]bool{}
	for _, id := range m.d.Green {
		green[id] = true
	}
	total, share := 0.0, 0.0
	for _, pv := range m.ep.ProductionVariants {
		total += pv.CurrentWeight
		for _, f := range m.ep.Fleets {
			if f.VariantName == pv.VariantName && green[f.ID] {
				share += pv.CurrentWeight * f.TrafficShare
			}
		}
	}
	if total <= 0 {
		return 0
	}
	return min(1, share/total)
}

// refreshCounts keeps CurrentInstanceCount in step with the fleets.
func (m *machine) refreshCounts() {
	for i := range m.ep.ProductionVariants {
		pv := &m.ep.ProductionVariants[i]
		n := 0
		for _, f := range m.ep.Fleets {
			if f.VariantName == pv.VariantName {
				n += f.InstanceCount
			}
		}
		pv.CurrentInstanceCount = n
	}
}

// setStatus shows what is happening to the variants: statuses holds a
// status and message by variant; variants it leaves out show none.
func (m *machine) setStatus(statuses map[string]kiln.VariantStatus) {
	apply := func(list []kiln.VariantSummary) {
		for i := range list {
			if st, ok := statuses[list[i].VariantName]; ok {
				st.StartTime = m.now
				list[i].VariantStatus = []kiln.VariantStatus{st}
			} else {
				list[i].VariantStatus = nil
			}
		}
	}
	apply(m.ep.ProductionVariants)
	if m.d != nil {
		apply(m.d.Target)
	}
	m.changed = true
}

// summary of the statuses for the history: the message, prefixed by the
// variant's name where variants differ.
func (m *machine) describe(statuses map[string]kiln.VariantStatus) string {
	order := m.variantOrder()
	first, same := "", true
	for _, v := range order {
		st, ok := statuses[v]
		if !ok {
			continue
		}
		if first == "" {
			first = st.StatusMessage
		} else if st.StatusMessage != first {
			same = false
		}
	}
	if same {
		return first
	}
	msg := ""
	for _, v := range order {
		if st, ok := statuses[v]; ok {
			if msg != "" {
				msg += " "
			}
			msg += fmt.Sprintf("Variant %q: %s", v, st.StatusMessage)
		}
	}
	return msg
}

// variantOrder lists the variants as DescribeEndpoint shows them.
func (m *machine) variantOrder() []string {
	var out []string
	seen := map[string]bool{}
	add := func(list []kiln.VariantSummary) {
		for _, v := range list {
			if !seen[v.VariantName] {
				seen[v.VariantName] = true
				out = append(out, v.VariantName)
			}
		}
	}
	add(m.ep.ProductionVariants)
	if m.d != nil {
		add(m.d.Target)
	}
	return out
}

// transition sets the statuses and records them as one history event.
func (m *machine) transition(statuses map[string]kiln.VariantStatus) {
	m.setStatus(statuses)
	msg := m.describe(statuses)
	if msg == "" {
		msg = m.d.Phase + "."
	}
	m.event(m.d.Phase, msg)
}

package deploy

import (
	"fmt"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/plan"
)

// Kinds of global steps besides the plan's own.
const (
	stepProvision = "provision" // blue/green: launch all of green, no traffic
	stepTerminate = "terminate" // blue/green: remove blue
	stepWeights   = "weights"   // UpdateEndpointWeightsAndCapacities
)

// step is one global step of an update: every variant moves to its goal
// together ("every variant shifts in lockstep").
type step struct {
	kind        string
	kinds       map[string]string // the plan's step kind by variant, for messages
	goal        goal
	bakes       bool // goes through a Baking phase (watched by alarms) even if Bake is 0
	bake        time.Duration
	bakeSetting string
}

// variant is one variant of an update as the plans see it.
type variant struct {
	name                 string
	inOld, inNew         bool
	blue, green          string // fleet IDs; "" when the fleet is not (or no longer) there
	blueSize, greenSize  int
	oldWeight, newWeight float64
}

// variants lists the variants of the update, old ones first.
func (m *machine) variants() ([]variant, error) {
	byName := map[string]*variant{}
	var order []string
	get := func(name string) *variant {
		v, ok := byName[name]
		if !ok {
			v = &variant{name: name}
			byName[name] = v
			order = append(order, name)
		}
		return v
	}
	for _, pv := range m.d.Previous {
		v := get(pv.VariantName)
		v.inOld, v.blueSize, v.oldWeight = true, pv.CurrentInstanceCount, pv.CurrentWeight
	}
	for _, pv := range m.d.Target {
		v := get(pv.VariantName)
		v.inNew, v.greenSize, v.newWeight = true, pv.DesiredInstanceCount, pv.DesiredWeight
	}
	pick := func(ids []string, role string, set func(*variant, string)) error {
		for _, id := range ids {
			f := m.fleet(id)
			if f == nil {
				continue
			}
			v, ok := byName[f.VariantName]
			if !ok {
				return fmt.Errorf("deployment %s: %s fleet %s belongs to variant %q, which the deployment does not know", m.d.ID, role, id, f.VariantName)
			}
			set(v, id)
		}
		return nil
	}
	var dup error
	if err := pick(m.d.Blue, "old", func(v *variant, id string) {
		if v.blue != "" {
			dup = fmt.Errorf("deployment %s: variant %q has two old fleets, %s and %s", m.d.ID, v.name, v.blue, id)
		}
		v.blue = id
	}); err != nil {
		return nil, err
	}
	if err := pick(m.d.Green, "new", func(v *variant, id string) {
		if v.green != "" {
			dup = fmt.Errorf("deployment %s: variant %q has two new fleets, %s and %s", m.d.ID, v.name, v.green, id)
		}
		v.green = id
	}); err != nil {
		return nil, err
	}
	if dup != nil {
		return nil, dup
	}
	out := make([]variant, 0, len(order))
	for _, name := range order {
		out = append(out, *byName[name])
	}
	return out, nil
}

// program returns the global steps of the update.
func (m *machine) program(vs []variant) ([]step, error) {
	switch m.d.Kind {
	case kiln.DeployBlueGreen:
		return m.blueGreenSteps(vs)
	case kiln.DeployRolling:
		return m.rollingSteps(vs)
	case kiln.DeployWeights:
		return m.weightsSteps(vs)
	}
	return nil, fmt.Errorf("deployment %s has no steps for kind %q", m.d.ID, m.d.Kind)
}

// blueGreenSteps: provision all of green; the policy's traffic steps (a
// variant with fewer steps holds its last one); the final bake; terminate
// blue.
func (m *machine) blueGreenSteps(vs []variant) ([]step, error) {
	plans := map[string][]plan.Step{}
	traffic := 0
	for _, v := range vs {
		if !v.inNew {
			continue
		}
		p, err := plan.BlueGreen(m.d.DeploymentConfig, v.greenSize)
		if err != nil {
			return nil, fmt.Errorf("deployment %s, variant %q: %w", m.d.ID, v.name, err)
		}
		plans[v.name] = p
		traffic = max(traffic, len(p)-1)
	}

	provision := step{kind: stepProvision, goal: newGoal()}
	for _, v := range vs {
		provision.goal.set(v.blue, v.blueSize, v.blueSize, 1)
		share := 0.0
		if !v.inOld {
			share = 1 // the variant's only fleet; its weight keeps traffic off it
		}
		provision.goal.set(v.green, v.greenSize, 0, share)
		provision.goal.weights[v.name] = v.oldWeight
	}
	steps := []step{provision}

	at := func(j int, final bool) step {
		s := step{kinds: map[string]string{}, goal: newGoal(), bakes: true}
		allGreen := true
		for _, v := range vs {
			p := plans[v.name]
			if p == nil { // a variant the new config drops
				s.goal.set(v.blue, v.blueSize, v.blueSize, 1)
				continue
			}
			ps := p[len(p)-1]
			if !final {
				ps = p[min(j, len(p)-2)]
			}
			s.kind, s.kinds[v.name] = ps.Kind, ps.Kind
			if ps.Bake >= s.bake {
				s.bake, s.bakeSetting = ps.Bake, ps.BakeSetting
			}
			if v.inOld {
				s.goal.set(v.blue, v.blueSize, v.blueSize, 1-ps.GreenShare)
				s.goal.set(v.green, v.greenSize, ps.GreenActive, ps.GreenShare)
			} else {
				s.goal.set(v.green, v.greenSize, ps.GreenActive, 1)
			}
			allGreen = allGreen && ps.GreenShare == 1
		}
		for _, v := range vs {
			s.goal.weights[v.name] = v.oldWeight
			if allGreen {
				s.goal.weights[v.name] = v.newWeight
			}
		}
		return s
	}
	for j := range traffic {
		steps = append(steps, at(j, false))
	}
	steps = append(steps, at(0, true))

	terminate := step{kind: stepTerminate, goal: newGoal()}
	for _, v := range vs {
		if v.inNew {
			terminate.goal.set(v.green, v.greenSize, v.greenSize, 1)
		}
		terminate.goal.weights[v.name] = v.newWeight
	}
	return append(steps, terminate), nil
}

// rollingSteps: the batches of every variant, started together; a variant
// with fewer batches holds its last batch and retires its last old
// instances with the others, at the last step, so that until then every
// variant can still roll back.
func (m *machine) rollingSteps(vs []variant) ([]step, error) {
	var policy *kiln.RollingUpdatePolicy
	if m.d.DeploymentConfig != nil {
		policy = m.d.DeploymentConfig.RollingUpdatePolicy
	}
	plans := map[string][]plan.Step{}
	total := 0
	for _, v := range vs {
		if !v.inOld || !v.inNew {
			return nil, fmt.Errorf("deployment %s: rolling update of variant %q, which is not in both configs", m.d.ID, v.name)
		}
		p, err := plan.RollingResize(policy, v.blueSize, v.greenSize)
		if err != nil {
			return nil, fmt.Errorf("deployment %s, variant %q: %w", m.d.ID, v.name, err)
		}
		plans[v.name] = p
		total = max(total, len(p))
	}
	steps := make([]step, 0, total)
	for j := range total {
		s := step{kinds: map[string]string{}, goal: newGoal()}
		allGreen := true
		for _, v := range vs {
			p := plans[v.name]
			var ps plan.Step
			holding := false
			switch {
			case j == total-1:
				ps = p[len(p)-1]
			case j < len(p)-1:
				ps = p[j]
			default:
				ps, holding = p[len(p)-2], true
			}
			s.kinds[v.name] = ps.Kind
			if !holding {
				if ps.Kind == plan.Batch {
					s.kind, s.bakes = plan.Batch, true
				} else if s.kind == "" {
					s.kind = plan.Retire
				}
				if ps.Bake >= s.bake {
					s.bake, s.bakeSetting = ps.Bake, ps.BakeSetting
				}
			}
			s.goal.set(v.green, ps.GreenActive, ps.GreenActive, ps.GreenShare)
			if old := v.blueSize - ps.BlueRetired; old > 0 {
				s.goal.set(v.blue, old, old, 1-ps.GreenShare)
			}
			allGreen = allGreen && ps.GreenShare == 1
		}
		for _, v := range vs {
			s.goal.weights[v.name] = v.oldWeight
			if allGreen {
				s.goal.weights[v.name] = v.newWeight
			}
		}
		steps = append(steps, s)
	}
	return steps, nil
}

// weightsSteps: one step to the desired weights and instance counts.
func (m *machine) weightsSteps(vs []variant) ([]step, error) {
	s := step{kind: stepWeights, goal: newGoal()}
	for _, v := range vs {
		if v.blue == "" {
			return nil, fmt.Errorf("deployment %s: variant %q has no fleet", m.d.ID, v.name)
		}
		s.goal.set(v.blue, v.greenSize, v.greenSize, 1)
		s.goal.weights[v.name] = v.newWeight
	}
	return []step{s}, nil
}

// rollbackGoal is the next goal of a rollback, derived from the fleets as
// they are, so that a rollback needs no state of its own beyond its reason.
// final reports that it is the last one: the whole old fleet back with all
// the traffic, and nothing new left.
//
// Blue/green: the old fleets never lost an instance, so the first goal
// gives them all the traffic in one write and the next removes green.
// Rolling: old instances come back RollbackMaximumBatchSize at a time; each
// batch launches them, waits for them to be healthy, gives them traffic and
// retires the matching share of new instances.
func (m *machine) rollbackGoal(vs []variant) (goal, bool, error) {
	g := newGoal()
	if m.d.Kind == kiln.DeployWeights {
		for _, v := range vs {
			g.set(v.blue, v.blueSize, v.blueSize, 1)
			g.weights[v.name] = v.oldWeight
		}
		return g, true, nil
	}
	var policy *kiln.RollingUpdatePolicy
	if m.d.DeploymentConfig != nil {
		policy = m.d.DeploymentConfig.RollingUpdatePolicy
	}
	final := true
	for _, v := range vs {
		g.weights[v.name] = v.oldWeight
		if !v.inOld {
			continue // its new fleet goes
		}
		bf := m.fleet(v.blue)
		if bf == nil {
			return g, false, fmt.Errorf("deployment %s: cannot roll back variant %q, its old fleet is gone", m.d.ID, v.name)
		}
		b, ba := bf.InstanceCount, bf.ActiveInstanceCount
		grn, ga := 0, 0
		if gf := m.fleet(v.green); gf != nil {
			grn, ga = gf.InstanceCount, gf.ActiveInstanceCount
		}
		nb := b
		if b == ba && grn == ga && b < v.blueSize {
			// Between batches: start the next one.
			nb, _ = plan.RollbackStep(policy, v.blueSize, v.greenSize, b, ga)
		}
		ng := min(ga, plan.GreenKept(nb, v.blueSize, v.greenSize))
		if nb+ng == 0 {
			return g, false, fmt.Errorf("deployment %s: variant %q would be left without instances", m.d.ID, v.name)
		}
		g.set(v.blue, nb, nb, float64(nb)/float64(nb+ng))
		if ng > 0 {
			g.set(v.green, ng, ng, float64(ng)/float64(nb+ng))
		}
		if nb != v.blueSize || ng != 0 {
			final = false
		}
	}
	return g, final, nil
}

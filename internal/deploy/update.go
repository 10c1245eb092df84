package deploy

import (
	"fmt"
	"strconv"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/plan"
)

// update runs a blue/green, rolling or weights deployment.
func (m *machine) update() error {
	vs, err := m.variants()
	if err != nil {
		return err
	}
	steps, err := m.program(vs)
	if err != nil {
		return err
	}
	if m.d.Phase == kiln.PhaseRollingBack {
		return m.rollback(vs)
	}
	if m.canRollBack(vs) {
		if reason := m.rollbackCause(vs); reason != "" {
			m.d.RollbackReason = reason
			m.enter(kiln.PhaseRollingBack)
			m.event(kiln.PhaseRollingBack, reason)
			return m.rollback(vs)
		}
		m.wakeAt(m.deadline())
	}
	return m.forward(vs, steps)
}

// deadline is when the update times out (MaximumExecutionTimeoutInSeconds).
func (m *machine) deadline() time.Time {
	return m.d.StartTime.Add(time.Duration(m.d.DeploymentConfig.ExecutionTimeout()) * time.Second)
}

// canRollBack reports whether every old fleet is still there to take the
// traffic back. Once the old fleets are being terminated, the update can
// only go forward.
func (m *machine) canRollBack(vs []variant) bool {
	if m.d.Phase == kiln.PhaseTerminating {
		return false
	}
	for _, v := range vs {
		if v.inOld && v.blue == "" {
			return false
		}
	}
	return true
}

// rollbackCause returns why the update must roll back now, or "", and sets
// the deployment's RollbackCause to match.
func (m *machine) rollbackCause(vs []variant) string {
	if m.d.RollbackReason != "" {
		if m.d.RollbackCause == "" && m.d.StopRequested {
			m.d.RollbackCause = kiln.CauseOperator
		}
		return m.d.RollbackReason
	}
	if m.d.StopRequested {
		m.d.RollbackCause = kiln.CauseOperator
		return stopReason("stopped by operator")
	}
	for _, v := range vs {
		id := v.green
		if m.d.Kind == kiln.DeployWeights {
			id = v.blue
			if f := m.fleet(id); f == nil || f.InstanceCount <= f.ActiveInstanceCount {
				continue // not launching anything
			}
		}
		if st, ok := m.obs.Fleets[id]; ok && id != "" && st.LaunchFailed {
			m.d.RollbackCause = kiln.CauseLaunchFailed
			return fmt.Sprintf("Update rolled back because new instances of variant %q (endpoint config %q) failed to launch: %s",
				v.name, m.d.EndpointConfigName, reasonText(st.Reason))
		}
	}
	for _, name := range m.d.DeploymentConfig.AlarmNames() {
		st, ok := m.obs.Alarms[name]
		if !ok || st.StateValue != kiln.StateAlarm {
			continue
		}
		if m.greenShare() == 0 {
			// An alarm set off by the update before this one (rolled
			// back a second ago) may not have seen the live fleet again
			// yet: give it PreTrafficAlarmWait to leave ALARM; traffic
			// does not move meanwhile (see forward).
			if settle := m.d.StartTime.Add(PreTrafficAlarmWait); m.now.Before(settle) {
				m.wakeAt(settle)
				continue
			}
			m.d.RollbackCause = kiln.CauseAlarm
			return fmt.Sprintf("Update failed before any traffic moved because alarm %q was already in ALARM: %s", name, reasonText(st.StateReason))
		}
		m.d.RollbackCause = kiln.CauseAlarm
		return fmt.Sprintf("Update rolled back because alarm %q is in ALARM: %s", name, reasonText(st.StateReason))
	}
	if !m.now.Before(m.deadline()) {
		if why := m.evidenceTimeoutCause(); why != "" {
			m.d.RollbackCause = kiln.CauseNoEvidence
			return why
		}
		m.d.RollbackCause = kiln.CauseTimeout
		return fmt.Sprintf("Update rolled back because it did not complete within MaximumExecutionTimeoutInSeconds (%d seconds).",
			m.d.DeploymentConfig.ExecutionTimeout())
	}
	return ""
}

// PreTrafficAlarmWait is how long an update waits, before any traffic
// moves, for its rollback alarms to leave ALARM before it fails. An alarm
// set off by an update that was just rolled back still shows that
// update's errors for a period or two; the live fleet is not to blame.
const PreTrafficAlarmWait = 60 * time.Second

// alarmInAlarm returns the first rollback alarm in ALARM, or "".
func (m *machine) alarmInAlarm() string {
	for _, name := range m.d.DeploymentConfig.AlarmNames() {
		if st, ok := m.obs.Alarms[name]; ok && st.StateValue == kiln.StateAlarm {
			return name
		}
	}
	return ""
}

// holdTraffic keeps the new fleets without traffic while a rollback alarm
// is in ALARM; the variants say so, once.
func (m *machine) holdTraffic(vs []variant, alarm string) {
	msg := fmt.Sprintf("Waiting for alarm %q to leave ALARM before moving traffic; the update fails if it is still in ALARM %d seconds after it started.",
		alarm, int(PreTrafficAlarmWait/time.Second))
	st := map[string]kiln.VariantStatus{}
	same := true
	for _, v := range vs {
		if !v.inNew {
			continue
		}
		st[v.name] = kiln.VariantStatus{Status: kiln.VariantUpdating, StatusMessage: msg}
		for _, pv := range m.ep.ProductionVariants {
			if pv.VariantName == v.name && (len(pv.VariantStatus) == 0 || pv.VariantStatus[0].StatusMessage != msg) {
				same = false
			}
		}
	}
	if !same {
		m.transition(st)
	}
}

func stopReason(reason string) string {
	return fmt.Sprintf("Update rolled back because it was %s.", reason)
}

func reasonText(s string) string {
	if s == "" {
		return "no reason given."
	}
	return s
}

// forward walks the update's steps: for each, launch, wait for health, move
// traffic, bake, retire; then the next step.
func (m *machine) forward(vs []variant, steps []step) error {
	advanced := false
	for range len(steps) + 1 {
		j := m.d.Step
		if j < 0 || j > len(steps) {
			return fmt.Errorf("deployment %s is at step %d of %d", m.d.ID, j, len(steps))
		}
		if j == len(steps) {
			return m.complete()
		}
		s := steps[j]
		for _, v := range vs {
			// Old fleets go at the last step only, and new ones never.
			if (v.inOld && v.blue == "" && j != len(steps)-1) || (v.inNew && v.green == "" && m.d.Kind != kiln.DeployWeights) {
				return fmt.Errorf("deployment %s at step %d: a fleet of variant %q is missing", m.d.ID, j, v.name)
			}
		}
		if launched := m.grow(s.goal); launched != nil {
			m.enter(kiln.PhaseProvisioning)
			m.transition(each(launched, kiln.VariantCreating, "Launching %d instance(s)."))
			m.wakeNow()
			return nil
		}
		if !m.ready(s.goal) {
			if advanced {
				m.transition(m.waiting(s.goal))
			}
			return nil // the fleet manager's news, or the timeout, moves it on
		}
		if s.kind != stepProvision && m.greenShare() == 0 {
			if name := m.alarmInAlarm(); name != "" {
				m.holdTraffic(vs, name)
				return nil
			}
		}
		if moved := m.route(s.goal); moved != nil {
			switch s.kind {
			case plan.Retire:
				m.enter(kiln.PhaseRetiring)
			case stepTerminate:
				m.enter(kiln.PhaseTerminating)
			default:
				m.enter(kiln.PhaseActivatingTraffic)
			}
			m.transition(m.routeStatuses(vs, s, moved))
			m.wakeNow()
			return nil
		}
		if s.bakes {
			if m.d.Phase != kiln.PhaseBaking {
				m.enter(kiln.PhaseBaking)
				m.transition(m.bakeStatuses(vs, s))
				m.wakeAt(m.now.Add(s.bake))
				return nil
			}
			n, lacking := m.lacksEvidence(vs, s)
			if end := m.d.PhaseStartTime.Add(s.bake); m.now.Before(end) {
				name := m.judgePromote()
				if name == "" || lacking {
					m.wakeAt(end)
					return nil
				}
				m.event(kiln.PhaseBaking, fmt.Sprintf("Bake ended early: judge alarm %q shows the new fleet is not worse than the old one.", name))
			} else if name := m.judgeWait(); name != "" {
				m.holdBake(vs, s, name)
				return nil
			} else if lacking {
				_, err := m.holdForEvidence(vs, s, n)
				return err
			}
			m.blindBake(vs, s)
		}
		if stopped, changed := m.shrink(s.goal); changed {
			if s.kind == stepTerminate {
				m.enter(kiln.PhaseTerminating)
			} else {
				m.enter(kiln.PhaseRetiring)
			}
			m.transition(each(stopped, kiln.VariantDeleting, "Terminating %d instance(s)."))
			m.wakeNow()
			return nil
		}
		m.d.Step++
		m.enter(kiln.PhaseProvisioning)
		advanced = true
	}
	return fmt.Errorf("deployment %s made no progress", m.d.ID)
}

// complete ends an update that reached its last step.
func (m *machine) complete() error {
	d := m.d
	for _, f := range m.ep.Fleets {
		if d.Kind != kiln.DeployWeights && !contains(d.Green, f.ID) {
			return fmt.Errorf("deployment %s is complete but fleet %s of the old config still runs", d.ID, f.ID)
		}
	}
	target := cloneSummaries(d.Target)
	for i := range target {
		target[i].CurrentWeight = target[i].DesiredWeight
		target[i].VariantStatus = nil
	}
	m.ep.ProductionVariants = target
	msg := "Weights and capacities updated."
	if d.Kind != kiln.DeployWeights {
		m.ep.EndpointConfigName = d.EndpointConfigName
		if d.DeploymentConfig != nil {
			m.ep.LastDeploymentConfig = cloneDeploymentConfig(d.DeploymentConfig)
		}
		msg = fmt.Sprintf("Update complete: endpoint config %q is in service.", d.EndpointConfigName)
	}
	m.ep.FailureReason = ""
	if d.Kind != kiln.DeployWeights {
		m.ep.EvidenceWarning = m.evidenceWarning()
		if m.ep.EvidenceWarning != "" {
			msg += " " + m.ep.EvidenceWarning
		}
	}
	m.ep.EndpointStatus = kiln.StatusInService
	m.event(kiln.PhaseCompleted, msg)
	m.ep.Deployment, m.d = nil, nil
	return nil
}

// rollback takes the next step back to the old fleets.
func (m *machine) rollback(vs []variant) error {
	g, final, err := m.rollbackGoal(vs)
	if err != nil {
		return err
	}
	for _, f := range m.ep.Fleets {
		fg, ok := g.fleets[f.ID]
		if st := m.obs.Fleets[f.ID]; ok && fg.running > f.ActiveInstanceCount && contains(m.d.Blue, f.ID) && st.LaunchFailed {
			return m.rollbackFailed(f.ID, st.Reason)
		}
	}
	if launched := m.grow(g); launched != nil {
		m.transition(each(launched, kiln.VariantCreating, "Rolling back: launching %d instance(s)."))
		m.wakeNow()
		return nil
	}
	if !m.ready(g) {
		return nil
	}
	if moved := m.route(g); moved != nil {
		st := map[string]kiln.VariantStatus{}
		for _, v := range vs {
			if fg, ok := g.fleets[v.blue]; ok && moved[v.name] {
				st[v.name] = kiln.VariantStatus{Status: kiln.VariantUpdating,
					StatusMessage: fmt.Sprintf("Rolling back: traffic restored to %d instance(s) of endpoint config %q.", fg.active, m.ep.EndpointConfigName)}
			}
		}
		m.transition(st)
		m.wakeNow()
		return nil
	}
	if stopped, changed := m.shrink(g); changed {
		st := each(stopped, kiln.VariantDeleting, "Terminating %d instance(s).")
		if len(st) == 0 {
			m.setStatus(nil)
			m.event(m.d.Phase, "Removed the new fleets before any of their instances launched.")
		} else {
			m.transition(st)
		}
		m.wakeNow()
		return nil
	}
	if final {
		m.rolledBack()
		return nil
	}
	return fmt.Errorf("rollback of deployment %s made no progress", m.d.ID)
}

// rolledBack ends a rollback: the endpoint is in service on its old config,
// and FailureReason says why the update did not happen.
func (m *machine) rolledBack() {
	d := m.d
	prev := cloneSummaries(d.Previous)
	for i := range prev {
		prev[i].VariantStatus = nil
	}
	m.ep.ProductionVariants = prev
	m.ep.FailureReason = d.RollbackReason
	m.ep.EndpointStatus = kiln.StatusInService
	m.event(kiln.PhaseRolledBack, fmt.Sprintf("Endpoint config %q is in service again. %s", m.ep.EndpointConfigName, d.RollbackReason))
	m.ep.Deployment, m.d = nil, nil
}

// rollbackFailed ends an update whose rollback cannot launch the old
// instances it needs: the endpoint keeps serving with what runs, as
// UpdateRollbackFailed.
func (m *machine) rollbackFailed(fleetID, reason string) error {
	f := m.fleet(fleetID)
	f.InstanceCount = f.ActiveInstanceCount // stop launching what cannot launch
	m.ep.EndpointStatus = kiln.StatusUpdateRollbackFailed
	m.ep.FailureReason = fmt.Sprintf("%s Rolling back failed too: instances of variant %q (endpoint config %q) could not launch: %s",
		m.d.RollbackReason, f.VariantName, f.EndpointConfigName, reasonText(reason))
	m.setStatus(nil)
	m.event(kiln.PhaseRollbackFailed, m.ep.FailureReason)
	m.ep.Deployment, m.d = nil, nil
	return nil
}

// ---- statuses

// each gives every variant of n the same status, with its count; variants
// with a count of 0 (a fleet that never ran an instance) get none.
func each(n counts, status, format string) map[string]kiln.VariantStatus {
	st := map[string]kiln.VariantStatus{}
	for v, k := range n {
		if k > 0 {
			st[v] = kiln.VariantStatus{Status: status, StatusMessage: fmt.Sprintf(format, k)}
		}
	}
	return st
}

// capacity names the capacity a step's traffic is on, as SageMaker words it.
func capacity(kind string) string {
	switch kind {
	case plan.Canary:
		return "canary"
	case plan.Linear:
		return "linear"
	case plan.Batch, plan.Retire:
		return "new"
	}
	return "full"
}

func (m *machine) routeStatuses(vs []variant, s step, moved map[string]bool) map[string]kiln.VariantStatus {
	st := map[string]kiln.VariantStatus{}
	for _, v := range vs {
		if !moved[v.name] {
			continue
		}
		kind := s.kinds[v.name]
		switch {
		case s.kind == stepWeights:
			fg := s.goal.fleets[v.blue]
			st[v.name] = kiln.VariantStatus{Status: kiln.VariantUpdating, StatusMessage: fmt.Sprintf(
				"Updating to weight %s with %d instance(s).", strconv.FormatFloat(v.newWeight, 'g', -1, 64), fg.active)}
		case s.kind == stepTerminate || kind == plan.Retire:
			n := 0
			for _, f := range m.ep.Fleets {
				if f.VariantName != v.name {
					continue
				}
				fg, ok := s.goal.fleets[f.ID]
				if !ok {
					n += f.InstanceCount
				} else if f.InstanceCount > fg.running {
					n += f.InstanceCount - fg.running
				}
			}
			st[v.name] = kiln.VariantStatus{Status: kiln.VariantDeleting, StatusMessage: fmt.Sprintf(
				"Deactivating traffic on %d instance(s) before terminating them.", n)}
		default:
			fg, ok := s.goal.fleets[v.green]
			if !ok {
				st[v.name] = kiln.VariantStatus{Status: kiln.VariantUpdating, StatusMessage: fmt.Sprintf(
					"Deactivating traffic: the variant is not in endpoint config %q.", m.d.EndpointConfigName)}
				continue
			}
			st[v.name] = kiln.VariantStatus{Status: kiln.VariantActivatingTraffic, StatusMessage: fmt.Sprintf(
				"Activating traffic on %s capacity of %d instance(s).", capacity(kind), fg.active)}
		}
	}
	return st
}

func (m *machine) bakeStatuses(vs []variant, s step) map[string]kiln.VariantStatus {
	st := map[string]kiln.VariantStatus{}
	for _, v := range vs {
		fg, ok := s.goal.fleets[v.green]
		if !ok || fg.active == 0 {
			continue
		}
		st[v.name] = kiln.VariantStatus{Status: kiln.VariantBaking, StatusMessage: fmt.Sprintf(
			"Baking for %d seconds (%s) with traffic enabled on %s capacity of %d instance(s).",
			int(s.bake/time.Second), s.bakeSetting, capacity(s.kinds[v.name]), fg.active)}
	}
	return st
}

// waiting describes instances the next step waits for.
func (m *machine) waiting(g goal) map[string]kiln.VariantStatus {
	st := map[string]kiln.VariantStatus{}
	for _, f := range m.ep.Fleets {
		if fg, ok := g.fleets[f.ID]; ok && fg.running > f.ActiveInstanceCount {
			if h := m.obs.Fleets[f.ID].Healthy; h < fg.running {
				st[f.VariantName] = kiln.VariantStatus{Status: kiln.VariantCreating, StatusMessage: fmt.Sprintf(
					"Waiting for %d instance(s) to pass their health check.", fg.running-h)}
			}
		}
	}
	return st
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

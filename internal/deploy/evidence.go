package deploy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
)

// A bake is evidence that the new fleets work only if they answered
// requests during it: an alarm with TreatMissingData notBreaching stays OK
// through a bake that saw no traffic, and a model that fails every request
// would be promoted. So a bake that ends without a single request answered
// by the new fleets is recorded (Deployment.BlindBakes, a history event,
// and EvidenceWarning once the update completes), and a deployment with
// MinRequestsPerBake holds every bake until the new fleets answered that
// many requests.

// answered is how many requests the new fleets that take traffic in step s
// answered during its bake, and whether that was counted at all.
func (m *machine) answered(vs []variant, s step) (int, bool) {
	if m.obs.Answered == nil {
		return 0, false
	}
	n := 0
	for _, v := range vs {
		if fg, ok := s.goal.fleets[v.green]; ok && fg.active > 0 {
			n += m.obs.Answered[v.green]
		}
	}
	return n, true
}

// lacksEvidence reports whether the bake of step s has not yet seen the
// requests it needs, and how many it saw.
func (m *machine) lacksEvidence(vs []variant, s step) (int, bool) {
	if m.d.MinRequestsPerBake <= 0 {
		return 0, false
	}
	n, counted := m.answered(vs, s)
	return n, !counted || n < m.d.MinRequestsPerBake
}

// holdForEvidence keeps a bake whose time is up going until the new fleets
// answered MinRequestsPerBake requests; past EvidenceTimeoutInSeconds it
// rolls the update back. It reports whether the update rolled back.
func (m *machine) holdForEvidence(vs []variant, s step, n int) (bool, error) {
	end := m.d.PhaseStartTime.Add(s.bake)
	if t := m.d.DeploymentConfig.EvidenceTimeout(); t > 0 {
		limit := end.Add(time.Duration(t) * time.Second)
		if !m.now.Before(limit) {
			m.d.RollbackReason = fmt.Sprintf("Update rolled back because the new fleet answered %d of the %d requests the bake of step %d needs (MinRequestsPerBake) within EvidenceTimeoutInSeconds (%d seconds): nothing showed that it works.",
				n, m.d.MinRequestsPerBake, m.d.Step, t)
			m.enter(kiln.PhaseRollingBack)
			m.event(kiln.PhaseRollingBack, m.d.RollbackReason)
			return true, m.rollback(vs)
		}
		m.wakeAt(limit)
	}
	msg := fmt.Sprintf("Baking beyond %d seconds: waiting for the new fleet to answer at least %d requests (MinRequestsPerBake) before the bake ends.",
		int(s.bake/time.Second), m.d.MinRequestsPerBake)
	m.holdWith(vs, s, msg)
	return false, nil
}

// blindBake records a bake that ended with no request answered by the new
// fleets. A bake of no time (WaitIntervalInSeconds or
// TerminationWaitInSeconds 0) is not one anybody meant to watch.
func (m *machine) blindBake(vs []variant, s step) {
	if n, counted := m.answered(vs, s); s.bake <= 0 || !counted || n > 0 {
		return
	}
	m.d.BlindBakes = append(m.d.BlindBakes, m.d.Step)
	watched := "no rollback alarm watched it"
	if names := m.d.DeploymentConfig.AlarmNames(); len(names) > 0 {
		watched = fmt.Sprintf("alarm(s) %s watched no traffic", quoteAll(names))
	}
	m.event(kiln.PhaseBaking, fmt.Sprintf("No evidence: the bake of step %d ended with no request answered by the new fleet; %s.", m.d.Step, watched))
}

// evidenceWarning is the endpoint's EvidenceWarning once the update
// completes: empty when every bake saw the new fleets answer.
func (m *machine) evidenceWarning() string {
	if len(m.d.BlindBakes) == 0 {
		return ""
	}
	steps := make([]string, len(m.d.BlindBakes))
	for i, s := range m.d.BlindBakes {
		steps[i] = strconv.Itoa(s)
	}
	return fmt.Sprintf("Promoted without evidence: the new fleet answered no request during the bake of step(s) %s, so its alarms watched no traffic. Send traffic during bakes, or require it with MinRequestsPerBake (kiln deploy --min-requests).",
		strings.Join(steps, ", "))
}

// evidenceTimeoutCause words an execution timeout that struck while a bake
// waited for evidence, or returns "".
func (m *machine) evidenceTimeoutCause() string {
	if m.d.MinRequestsPerBake <= 0 || m.d.Phase != kiln.PhaseBaking || m.obs.Answered == nil {
		return ""
	}
	n := 0
	for _, id := range m.d.Green {
		n += m.obs.Answered[id]
	}
	if n >= m.d.MinRequestsPerBake {
		return ""
	}
	return fmt.Sprintf("Update rolled back because the new fleet answered %d of the %d requests the bake of step %d needs (MinRequestsPerBake) within MaximumExecutionTimeoutInSeconds (%d seconds): nothing showed that it works.",
		n, m.d.MinRequestsPerBake, m.d.Step, m.d.DeploymentConfig.ExecutionTimeout())
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

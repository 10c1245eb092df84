package deploy

import (
	"fmt"
	"time"

	"github.com/kiln-serve/kiln"
)

// create waits for a new endpoint's fleets, which StartCreate provisioned in
// full: InService once every instance is healthy, Failed (with its fleets
// stopped) if one cannot launch or they are not all healthy in time.
func (m *machine) create() error {
	for _, f := range m.ep.Fleets {
		if st := m.obs.Fleets[f.ID]; st.LaunchFailed {
			m.createFailed(fmt.Sprintf("Endpoint creation failed because instances of variant %q could not launch: %s",
				f.VariantName, reasonText(st.Reason)))
			return nil
		}
	}
	ready := true
	for _, f := range m.ep.Fleets {
		if m.obs.Fleets[f.ID].Healthy < f.InstanceCount {
			ready = false
		}
	}
	if ready {
		for i := range m.ep.ProductionVariants {
			pv := &m.ep.ProductionVariants[i]
			pv.CurrentWeight, pv.VariantStatus = pv.DesiredWeight, nil
		}
		m.ep.EndpointStatus = kiln.StatusInService
		m.ep.FailureReason = ""
		m.event(kiln.PhaseCompleted, fmt.Sprintf("Endpoint is in service on endpoint config %q.", m.ep.EndpointConfigName))
		m.ep.Deployment, m.d = nil, nil
		return nil
	}
	deadline := m.d.StartTime.Add(kiln.DefaultExecutionTimeoutSeconds * time.Second)
	if !m.now.Before(deadline) {
		m.createFailed(fmt.Sprintf("Endpoint creation failed because its instances did not all pass their health checks within %d seconds.",
			kiln.DefaultExecutionTimeoutSeconds))
		return nil
	}
	m.wakeAt(deadline)
	return nil
}

func (m *machine) createFailed(reason string) {
	m.ep.Fleets = nil // stops every instance
	for i := range m.ep.ProductionVariants {
		m.ep.ProductionVariants[i].VariantStatus = nil
	}
	m.ep.EndpointStatus = kiln.StatusFailed
	m.ep.FailureReason = reason
	m.event(kiln.PhaseFailed, reason)
	m.ep.Deployment, m.d = nil, nil
}

package kiln

import "math"

// MaxFleetsPerEndpoint bounds an endpoint's fleets: an old and a new one per
// variant during a deployment, with room for a rolling update's extra.
const MaxFleetsPerEndpoint = 4 * MaxVariants

// ValidateStored checks an endpoint record as Kiln reads it back from the
// store, before the fleet manager, the gateway or the deployment
// controller act on it. Kiln writes only valid records; this catches one
// written by an older Kiln, by hand, or damaged, so that it is set aside
// (the endpoint marked Failed, with a reason) instead of starting a runaway
// number of processes or stopping the server.
func (e *Endpoint) ValidateStored() error {
	if err := ValidateName("EndpointName", e.EndpointName); err != nil {
		return err
	}
	if len(e.ProductionVariants) > MaxVariants {
		return Errorf(EINVALID, "ProductionVariants has %d entries; at most %d are allowed.", len(e.ProductionVariants), MaxVariants)
	}
	for i, v := range e.ProductionVariants {
		if !finiteNonNegative(v.CurrentWeight) || !finiteNonNegative(v.DesiredWeight) {
			return Errorf(EINVALID, "ProductionVariants[%d]: weights must be finite numbers of at least 0.", i)
		}
		if v.CurrentInstanceCount < 0 || v.CurrentInstanceCount > MaxInstancesPerVariant || v.DesiredInstanceCount < 0 || v.DesiredInstanceCount > MaxInstancesPerVariant {
			return Errorf(EINVALID, "ProductionVariants[%d]: instance counts must be from 0 to %d.", i, MaxInstancesPerVariant)
		}
	}
	if len(e.Fleets) > MaxFleetsPerEndpoint {
		return Errorf(EINVALID, "Fleets has %d entries; at most %d are allowed.", len(e.Fleets), MaxFleetsPerEndpoint)
	}
	ids := map[string]bool{}
	for i, f := range e.Fleets {
		switch {
		case f.ID == "" || ids[f.ID]:
			return Errorf(EINVALID, "Fleets[%d].ID %q is empty or not unique.", i, f.ID)
		case f.InstanceCount < 0 || f.InstanceCount > MaxInstancesPerVariant:
			return Errorf(EINVALID, "Fleets[%d].InstanceCount must be from 0 to %d, got %d.", i, MaxInstancesPerVariant, f.InstanceCount)
		case f.ActiveInstanceCount < 0 || f.ActiveInstanceCount > f.InstanceCount:
			return Errorf(EINVALID, "Fleets[%d].ActiveInstanceCount must be from 0 to InstanceCount (%d), got %d.", i, f.InstanceCount, f.ActiveInstanceCount)
		case !finiteNonNegative(f.TrafficShare) || f.TrafficShare > 1+1e-9:
			return Errorf(EINVALID, "Fleets[%d].TrafficShare must be from 0 to 1, got %v.", i, f.TrafficShare)
		}
		ids[f.ID] = true
		c := f.Container
		m := Model{ModelName: f.ModelName, PrimaryContainer: &c}
		if err := m.Validate(); err != nil {
			return Errorf(EINVALID, "Fleets[%d]: %s", i, ErrorMessage(err))
		}
	}
	if d := e.Deployment; d != nil {
		if err := d.DeploymentConfig.Validate(); err != nil {
			return Errorf(EINVALID, "Deployment: %s", ErrorMessage(err))
		}
	}
	return e.LastDeploymentConfig.Validate()
}

func finiteNonNegative(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }

package deploy

import (
	"maps"
	"slices"

	"github.com/kiln-serve/kiln"
)

// Next and the Start functions work on copies: the record they are given is
// the caller's, and the caller compares it with what comes back.

func cloneEndpoint(e kiln.Endpoint) kiln.Endpoint {
	e.ProductionVariants = cloneSummaries(e.ProductionVariants)
	e.Fleets = cloneFleets(e.Fleets)
	e.Tags = slices.Clone(e.Tags)
	e.LastDeploymentConfig = cloneDeploymentConfig(e.LastDeploymentConfig)
	if e.Deployment != nil {
		d := *e.Deployment
		d.DeploymentConfig = cloneDeploymentConfig(d.DeploymentConfig)
		d.Blue = slices.Clone(d.Blue)
		d.Green = slices.Clone(d.Green)
		d.Target = cloneSummaries(d.Target)
		d.Previous = cloneSummaries(d.Previous)
		d.BlindBakes = slices.Clone(d.BlindBakes)
		e.Deployment = &d
	}
	return e
}

func cloneSummaries(s []kiln.VariantSummary) []kiln.VariantSummary {
	if s == nil {
		return nil
	}
	out := make([]kiln.VariantSummary, len(s))
	for i, v := range s {
		v.DeployedImages = slices.Clone(v.DeployedImages)
		v.VariantStatus = slices.Clone(v.VariantStatus)
		out[i] = v
	}
	return out
}

func cloneFleets(fs []kiln.Fleet) []kiln.Fleet {
	if fs == nil {
		return nil
	}
	out := make([]kiln.Fleet, len(fs))
	for i, f := range fs {
		f.Container = cloneContainer(f.Container)
		out[i] = f
	}
	return out
}

func cloneContainer(c kiln.ContainerDef) kiln.ContainerDef {
	c.Environment = maps.Clone(c.Environment)
	return c
}

func cloneCapacity(c *kiln.CapacitySize) *kiln.CapacitySize {
	if c == nil {
		return nil
	}
	v := *c
	return &v
}

func cloneDeploymentConfig(d *kiln.DeploymentConfig) *kiln.DeploymentConfig {
	if d == nil {
		return nil
	}
	out := &kiln.DeploymentConfig{}
	if bg := d.BlueGreenUpdatePolicy; bg != nil {
		p := *bg
		if tr := bg.TrafficRoutingConfiguration; tr != nil {
			t := *tr
			t.CanarySize = cloneCapacity(tr.CanarySize)
			t.LinearStepSize = cloneCapacity(tr.LinearStepSize)
			p.TrafficRoutingConfiguration = &t
		}
		out.BlueGreenUpdatePolicy = &p
	}
	if ru := d.RollingUpdatePolicy; ru != nil {
		p := *ru
		p.MaximumBatchSize = cloneCapacity(ru.MaximumBatchSize)
		p.RollbackMaximumBatchSize = cloneCapacity(ru.RollbackMaximumBatchSize)
		out.RollingUpdatePolicy = &p
	}
	if ar := d.AutoRollbackConfiguration; ar != nil {
		out.AutoRollbackConfiguration = &kiln.AutoRollbackConfiguration{Alarms: slices.Clone(ar.Alarms)}
	}
	out.MinRequestsPerBake, out.EvidenceTimeoutInSeconds = d.MinRequestsPerBake, d.EvidenceTimeoutInSeconds
	return out
}

package gateway

import "github.com/kiln-serve/kiln"

// HealthyInstance is an instance that passed its health check and still
// exists: the only kind that may take traffic.
type HealthyInstance struct {
	Endpoint, FleetID string
	ID, Addr          string
	// Ordinal numbers the instances of a fleet from 0.
	Ordinal int
}

// Routes is the routing decision: the routes of endpoints as their records
// say and the healthy instances allow. A fleet's instances are its healthy
// ones among the lowest-numbered ActiveInstanceCount (a canary activates
// part of a provisioned fleet); each variant's GreenShare is what its green
// fleets receive once shares are renormalised over the fleets with an
// instance, as the table routes. Recorders are left nil for the caller to
// fill. Routes keeps the order of endpoints, variants, fleets and instances.
func Routes(endpoints []kiln.Endpoint, healthy []HealthyInstance) []EndpointRoute {
	byFleet := map[[2]string][]HealthyInstance{} // by endpoint, fleet
	for _, in := range healthy {
		k := [2]string{in.Endpoint, in.FleetID}
		byFleet[k] = append(byFleet[k], in)
	}
	routes := make([]EndpointRoute, 0, len(endpoints))
	for _, ep := range endpoints {
		er := EndpointRoute{Name: ep.EndpointName}
		green := greenFleets(ep)
		for _, v := range ep.ProductionVariants {
			vr := VariantRoute{Name: v.VariantName, Weight: v.CurrentWeight}
			fleets := ep.FleetsOf(v.VariantName)
			for _, f := range fleets {
				fr := FleetRoute{ID: f.ID, Config: f.EndpointConfigName, Share: f.TrafficShare, Green: green[f.ID]}
				for _, in := range byFleet[[2]string{ep.EndpointName, f.ID}] {
					if in.Ordinal < f.ActiveInstanceCount {
						fr.Instances = append(fr.Instances, InstanceRoute{ID: in.ID, Addr: in.Addr})
					}
				}
				vr.Fleets = append(vr.Fleets, fr)
			}
			vr.GreenShare = greenShare(vr.Fleets)
			er.Variants = append(er.Variants, vr)
		}
		routes = append(routes, er)
	}
	return routes
}

// greenFleets are the fleets a blue/green or rolling deployment brings in.
func greenFleets(ep kiln.Endpoint) map[string]bool {
	green := map[string]bool{}
	if d := ep.Deployment; d != nil && (d.Kind == kiln.DeployBlueGreen || d.Kind == kiln.DeployRolling) {
		for _, id := range d.Green {
			green[id] = true
		}
	}
	return green
}

// greenShare is the green fleets' share of a variant's traffic as the
// gateway routes it: shares renormalised over the fleets with an instance;
// 0 when no fleet has one.
func greenShare(fleets []FleetRoute) float64 {
	total, green := 0.0, 0.0
	for _, f := range fleets {
		if len(f.Instances) == 0 {
			continue
		}
		total += f.Share
		if f.Green {
			green += f.Share
		}
	}
	if total <= 0 {
		return 0
	}
	return green / total
}

package gateway

import (
	"fmt"
	"math"
)

// EndpointRoute is how one endpoint's traffic is split: its variants, each
// variant's fleets, each fleet's instances.
type EndpointRoute struct {
	Name     string
	Variants []VariantRoute
}

// VariantRoute is one production variant of an endpoint.
type VariantRoute struct {
	Name string
	// Weight is the variant's relative share of the endpoint's traffic when
	// the client names no target variant. A variant with weight 0 is reached
	// only through the X-Amzn-SageMaker-Target-Variant header.
	Weight float64
	Fleets []FleetRoute
	// GreenShare is the share of the variant's traffic its Green fleets
	// receive as routed (see Routes); 0 outside a deployment. The gateway
	// does not read it: it is what the judge weighs the fleets' requests by.
	GreenShare float64
}

// FleetRoute is one group of identical instances of a variant; during a
// blue/green deployment a variant has two.
type FleetRoute struct {
	ID string
	// Config is the endpoint config the fleet runs.
	Config string
	// Share is the fleet's share of its variant's traffic, from 0 to 1.
	// Shares are renormalised over the fleets that have a routable instance,
	// so a fleet with no healthy instance never fails a request.
	Share     float64
	Instances []InstanceRoute
	// Green is set on a fleet a deployment brings in.
	Green bool
	// Recorder receives one Sample per request the fleet answers. If nil,
	// nothing is recorded.
	Recorder Recorder
}

// InstanceRoute is one instance that takes traffic.
type InstanceRoute struct {
	// ID names the instance. Outstanding-request counts and draining follow
	// the ID across table swaps.
	ID string
	// Addr is the instance's host:port; the gateway sends POST
	// http://Addr/invocations.
	Addr string
}

// Validate reports the first thing wrong with the route, naming the field.
// Update skips routes that do not validate.
func (e EndpointRoute) Validate() error {
	if e.Name == "" {
		return fmt.Errorf("endpoint route: Name is required")
	}
	seen := make(map[string]bool, len(e.Variants))
	for i, v := range e.Variants {
		if v.Name == "" {
			return fmt.Errorf("endpoint %s: Variants[%d].Name is required", e.Name, i)
		}
		if seen[v.Name] {
			return fmt.Errorf("endpoint %s: variant %s appears twice", e.Name, v.Name)
		}
		seen[v.Name] = true
		if math.IsNaN(v.Weight) || math.IsInf(v.Weight, 0) || v.Weight < 0 {
			return fmt.Errorf("endpoint %s: variant %s: Weight %v must be a finite number ≥ 0", e.Name, v.Name, v.Weight)
		}
		for j, f := range v.Fleets {
			if math.IsNaN(f.Share) || f.Share < 0 || f.Share > 1 {
				return fmt.Errorf("endpoint %s: variant %s: Fleets[%d].Share %v must be between 0 and 1", e.Name, v.Name, j, f.Share)
			}
			for k, in := range f.Instances {
				if in.ID == "" {
					return fmt.Errorf("endpoint %s: variant %s: Fleets[%d].Instances[%d].ID is required", e.Name, v.Name, j, k)
				}
				if in.Addr == "" {
					return fmt.Errorf("endpoint %s: variant %s: instance %s: Addr is required", e.Name, v.Name, in.ID)
				}
			}
		}
	}
	return nil
}

// Table is an immutable routing table. The gateway builds a new one on every
// Update (and Drain) and swaps it in atomically, so a request reads one
// consistent table without taking a lock.
type Table struct {
	endpoints map[string]*endpointTable
	routes    []EndpointRoute
	// replaced is closed when a newer table takes this one's place, for
	// the requests that wait for an instance.
	replaced chan struct{}
}

// Routes returns a copy of the routes the table was built from.
func (t *Table) Routes() []EndpointRoute { return cloneRoutes(t.routes) }

// Routable returns how many instances of the endpoint's variant take new
// requests in this table: those that are listed and not draining.
func (t *Table) Routable(endpoint, variant string) int {
	ep := t.endpoints[endpoint]
	if ep == nil {
		return 0
	}
	v := ep.variant(variant)
	if v == nil {
		return 0
	}
	return v.routable
}

type endpointTable struct {
	name string
	// all holds every variant, for the Target-Variant header.
	all []*variantTable
	// weighted holds the variants with weight > 0 and a routable instance,
	// with cumulative weights for one random draw.
	weighted []*variantTable
	cumW     []float64
	totalW   float64
}

type variantTable struct {
	name string
	// header is the X-Amzn-Invoked-Production-Variant value, made once.
	header []string
	// fleets holds the fleets with a routable instance; cumS their
	// cumulative shares. When every such fleet has share 0, uniform is
	// set and the fleets are chosen uniformly: a request is never failed
	// because the fleet meant to get it has no instance.
	fleets   []*fleetTable
	cumS     []float64
	totalS   float64
	uniform  bool
	routable int
}

type fleetTable struct {
	id        string
	config    string
	recorder  Recorder
	instances []*instance
}

func (ep *endpointTable) variant(name string) *variantTable {
	for _, v := range ep.all {
		if v.name == name {
			return v
		}
	}
	return nil
}

// buildTable makes a table from validated routes. instanceOf returns the
// state object for an instance route, or nil when the instance must not take
// new requests (it is draining).
func buildTable(routes []EndpointRoute, instanceOf func(InstanceRoute) *instance) *Table {
	t := &Table{endpoints: make(map[string]*endpointTable, len(routes)), routes: routes, replaced: make(chan struct{})}
	for _, er := range routes {
		ep := &endpointTable{name: er.Name}
		for _, vr := range er.Variants {
			v := &variantTable{name: vr.Name, header: []string{vr.Name}}
			for _, fr := range vr.Fleets {
				f := &fleetTable{id: fr.ID, config: fr.Config, recorder: fr.Recorder}
				for _, ir := range fr.Instances {
					if in := instanceOf(ir); in != nil {
						f.instances = append(f.instances, in)
					}
				}
				if len(f.instances) == 0 {
					continue
				}
				v.fleets = append(v.fleets, f)
				v.totalS += fr.Share
				v.cumS = append(v.cumS, v.totalS)
				v.routable += len(f.instances)
			}
			v.uniform = len(v.fleets) > 0 && v.totalS <= 0
			ep.all = append(ep.all, v)
			if vr.Weight > 0 && v.routable > 0 {
				ep.weighted = append(ep.weighted, v)
				ep.totalW += vr.Weight
				ep.cumW = append(ep.cumW, ep.totalW)
			}
		}
		t.endpoints[er.Name] = ep
	}
	return t
}

func cloneRoutes(routes []EndpointRoute) []EndpointRoute {
	out := make([]EndpointRoute, len(routes))
	for i, er := range routes {
		out[i] = EndpointRoute{Name: er.Name, Variants: make([]VariantRoute, len(er.Variants))}
		for j, vr := range er.Variants {
			v := VariantRoute{Name: vr.Name, Weight: vr.Weight, GreenShare: vr.GreenShare, Fleets: make([]FleetRoute, len(vr.Fleets))}
			for k, fr := range vr.Fleets {
				f := fr
				f.Instances = append([]InstanceRoute(nil), fr.Instances...)
				v.Fleets[k] = f
			}
			out[i].Variants[j] = v
		}
	}
	return out
}

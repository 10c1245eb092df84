package gateway

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-serve/kiln"
)

// TestRoutes is the routing decision as a table: endpoint records and the
// healthy instances in, routes out.
func TestRoutes(t *testing.T) {
	fleet := func(id, variant, config string, active int, share float64) kiln.Fleet {
		return kiln.Fleet{ID: id, VariantName: variant, EndpointConfigName: config, InstanceCount: active, ActiveInstanceCount: active, TrafficShare: share}
	}
	endpoint := func(d *kiln.Deployment, fleets ...kiln.Fleet) kiln.Endpoint {
		return kiln.Endpoint{EndpointName: "ep", ProductionVariants: []kiln.VariantSummary{{VariantName: "v", CurrentWeight: 1}}, Fleets: fleets, Deployment: d}
	}
	blueGreen := &kiln.Deployment{ID: "d1", Kind: kiln.DeployBlueGreen, Blue: []string{"b"}, Green: []string{"g"}}
	in := func(fleetID, id string, ordinal int) HealthyInstance {
		return HealthyInstance{Endpoint: "ep", FleetID: fleetID, ID: id, Addr: id + ":1", Ordinal: ordinal}
	}
	route := func(id string) InstanceRoute { return InstanceRoute{ID: id, Addr: id + ":1"} }
	variant := func(greenShare float64, fleets ...FleetRoute) []EndpointRoute {
		return []EndpointRoute{{Name: "ep", Variants: []VariantRoute{{Name: "v", Weight: 1, GreenShare: greenShare, Fleets: fleets}}}}
	}

	tests := []struct {
		name      string
		endpoints []kiln.Endpoint
		healthy   []HealthyInstance
		want      []EndpointRoute
	}{
		{
			name:      "one fleet, every instance healthy",
			endpoints: []kiln.Endpoint{endpoint(nil, fleet("b", "v", "c1", 2, 1))},
			healthy:   []HealthyInstance{in("b", "b0", 0), in("b", "b1", 1)},
			want:      variant(0, FleetRoute{ID: "b", Config: "c1", Share: 1, Instances: []InstanceRoute{route("b0"), route("b1")}}),
		},
		{
			name:      "a canary activates the lowest-numbered instances only",
			endpoints: []kiln.Endpoint{endpoint(blueGreen, fleet("b", "v", "c1", 3, 0.75), fleet("g", "v", "c2", 1, 0.25))},
			healthy:   []HealthyInstance{in("b", "b0", 0), in("b", "b1", 1), in("b", "b2", 2), in("g", "g0", 0), in("g", "g1", 1)},
			want: variant(0.25,
				FleetRoute{ID: "b", Config: "c1", Share: 0.75, Instances: []InstanceRoute{route("b0"), route("b1"), route("b2")}},
				FleetRoute{ID: "g", Config: "c2", Share: 0.25, Green: true, Instances: []InstanceRoute{route("g0")}}),
		},
		{
			name:      "a green fleet with no healthy instance gets none of the traffic",
			endpoints: []kiln.Endpoint{endpoint(blueGreen, fleet("b", "v", "c1", 1, 0.9), fleet("g", "v", "c2", 1, 0.1))},
			healthy:   []HealthyInstance{in("b", "b0", 0)},
			want: variant(0,
				FleetRoute{ID: "b", Config: "c1", Share: 0.9, Instances: []InstanceRoute{route("b0")}},
				FleetRoute{ID: "g", Config: "c2", Share: 0.1, Green: true}),
		},
		{
			name:      "a blue fleet with no healthy instance leaves all of it to green",
			endpoints: []kiln.Endpoint{endpoint(blueGreen, fleet("b", "v", "c1", 1, 0.9), fleet("g", "v", "c2", 1, 0.1))},
			healthy:   []HealthyInstance{in("g", "g0", 0)},
			want: variant(1,
				FleetRoute{ID: "b", Config: "c1", Share: 0.9},
				FleetRoute{ID: "g", Config: "c2", Share: 0.1, Green: true, Instances: []InstanceRoute{route("g0")}}),
		},
		{
			name:      "shares that add up to 0 give green a share of 0",
			endpoints: []kiln.Endpoint{endpoint(blueGreen, fleet("b", "v", "c1", 1, 0), fleet("g", "v", "c2", 1, 0))},
			healthy:   []HealthyInstance{in("b", "b0", 0), in("g", "g0", 0)},
			want: variant(0,
				FleetRoute{ID: "b", Config: "c1", Share: 0, Instances: []InstanceRoute{route("b0")}},
				FleetRoute{ID: "g", Config: "c2", Share: 0, Green: true, Instances: []InstanceRoute{route("g0")}}),
		},
		{
			name: "a change of weights brings in no green fleet",
			endpoints: []kiln.Endpoint{endpoint(&kiln.Deployment{ID: "d2", Kind: kiln.DeployWeights, Green: []string{"g"}},
				fleet("b", "v", "c1", 1, 0.5), fleet("g", "v", "c2", 1, 0.5))},
			healthy: []HealthyInstance{in("b", "b0", 0), in("g", "g0", 0)},
			want: variant(0,
				FleetRoute{ID: "b", Config: "c1", Share: 0.5, Instances: []InstanceRoute{route("b0")}},
				FleetRoute{ID: "g", Config: "c2", Share: 0.5, Instances: []InstanceRoute{route("g0")}}),
		},
		{
			name: "a rolling deployment's new fleets are green",
			endpoints: []kiln.Endpoint{endpoint(&kiln.Deployment{ID: "d3", Kind: kiln.DeployRolling, Blue: []string{"b"}, Green: []string{"g"}},
				fleet("b", "v", "c1", 1, 0.6), fleet("g", "v", "c2", 1, 0.4))},
			healthy: []HealthyInstance{in("b", "b0", 0), in("g", "g0", 0)},
			want: variant(0.4,
				FleetRoute{ID: "b", Config: "c1", Share: 0.6, Instances: []InstanceRoute{route("b0")}},
				FleetRoute{ID: "g", Config: "c2", Share: 0.4, Green: true, Instances: []InstanceRoute{route("g0")}}),
		},
		{
			name:      "instances of other endpoints and fleets stay out",
			endpoints: []kiln.Endpoint{endpoint(nil, fleet("b", "v", "c1", 1, 1))},
			healthy: []HealthyInstance{{Endpoint: "other", FleetID: "b", ID: "x0", Addr: "x0:1"},
				in("gone", "y0", 0), in("b", "b0", 0)},
			want: variant(0, FleetRoute{ID: "b", Config: "c1", Share: 1, Instances: []InstanceRoute{route("b0")}}),
		},
		{
			name: "variants keep their weights and their own fleets, endpoints their order",
			endpoints: []kiln.Endpoint{
				{EndpointName: "z", ProductionVariants: []kiln.VariantSummary{{VariantName: "A", CurrentWeight: 3}, {VariantName: "B", CurrentWeight: 0}},
					Fleets: []kiln.Fleet{fleet("fb", "B", "c", 1, 1), fleet("fa", "A", "c", 1, 1)}},
				{EndpointName: "a"},
			},
			healthy: []HealthyInstance{{Endpoint: "z", FleetID: "fa", ID: "a0", Addr: "a0:1"}},
			want: []EndpointRoute{
				{Name: "z", Variants: []VariantRoute{
					{Name: "A", Weight: 3, Fleets: []FleetRoute{{ID: "fa", Config: "c", Share: 1, Instances: []InstanceRoute{route("a0")}}}},
					{Name: "B", Weight: 0, Fleets: []FleetRoute{{ID: "fb", Config: "c", Share: 1}}},
				}},
				{Name: "a"},
			},
		},
		{
			name: "no endpoints, no routes",
			want: []EndpointRoute{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Routes(tt.endpoints, tt.healthy)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Routes mismatch (-want +got):\n%s", diff)
			}
			for _, er := range got {
				if err := er.Validate(); err != nil {
					t.Errorf("route does not validate: %v", err)
				}
			}
		})
	}
}

package deploy

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-serve/kiln"
)

func TestStartUpdateValidation(t *testing.T) {
	live := created(t, c1).ep
	known := func(name string) bool { return name == "latency" || name == "errors" }
	withTimeout := func(dc *kiln.DeploymentConfig, s int) *kiln.DeploymentConfig {
		if dc.BlueGreenUpdatePolicy != nil {
			dc.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds = s
		} else {
			dc.RollingUpdatePolicy.MaximumExecutionTimeoutInSeconds = s
		}
		return dc
	}
	renamed := config("c2", pv{name: "w", model: "m2", count: 4})
	tests := []struct {
		name   string
		ep     kiln.Endpoint
		cfg    kiln.EndpointConfig
		in     kiln.UpdateEndpointInput
		code   string
		errSub string
	}{
		{name: "canary over 50 percent", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: canaryConfig(pct(60), 0, 0)},
			code: kiln.EINVALID, errSub: "CanarySize.Value must be between 1 and 50 percent, got 60"},
		{name: "canary over half the fleet", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: canaryConfig(count(3), 0, 0)},
			code: kiln.EINVALID, errSub: `Variant "v": DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.CanarySize.Value is 3 instance(s), more than half of the green fleet of 4 instance(s).`},
		{name: "linear step under 10 percent", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: linearConfig(pct(9), 0, 0)},
			code: kiln.EINVALID, errSub: "LinearStepSize.Value must be between 10 and 50 percent, got 9"},
		{name: "linear step over 50 percent", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: linearConfig(pct(51), 0, 0)},
			code: kiln.EINVALID, errSub: "LinearStepSize.Value must be between 10 and 50 percent, got 51"},
		{name: "linear step over half the fleet", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: linearConfig(count(3), 0, 0)},
			code: kiln.EINVALID, errSub: "LinearStepSize.Value is 3 instance(s), more than half of the green fleet of 4 instance(s)"},
		{name: "wait over an hour", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: canaryConfig(pct(10), 3601, 0)},
			code: kiln.EINVALID, errSub: "TrafficRoutingConfiguration.WaitIntervalInSeconds must be between 0 and 3600 seconds, got 3601"},
		{name: "termination wait over an hour", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: canaryConfig(pct(10), 0, 3601)},
			code: kiln.EINVALID, errSub: "TerminationWaitInSeconds must be between 0 and 3600 seconds, got 3601"},
		{name: "rolling wait over an hour", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: rollingConfig(pct(25), nil, 3601)},
			code: kiln.EINVALID, errSub: "RollingUpdatePolicy.WaitIntervalInSeconds must be between 0 and 3600 seconds, got 3601"},
		{name: "timeout under 600", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: withTimeout(canaryConfig(pct(10), 0, 0), 599)},
			code: kiln.EINVALID, errSub: "MaximumExecutionTimeoutInSeconds must be between 600 and 28800 seconds, got 599"},
		{name: "timeout over 28800", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: withTimeout(canaryConfig(pct(10), 0, 0), 28801)},
			code: kiln.EINVALID, errSub: "MaximumExecutionTimeoutInSeconds must be between 600 and 28800 seconds, got 28801"},
		{name: "rolling timeout under 600", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: withTimeout(rollingConfig(pct(25), nil, 0), 10)},
			code: kiln.EINVALID, errSub: "RollingUpdatePolicy.MaximumExecutionTimeoutInSeconds must be between 600 and 28800 seconds, got 10"},
		{name: "both policies", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: &kiln.DeploymentConfig{
			BlueGreenUpdatePolicy: canaryConfig(pct(10), 0, 0).BlueGreenUpdatePolicy,
			RollingUpdatePolicy:   rollingConfig(pct(25), nil, 0).RollingUpdatePolicy}},
			code: kiln.EINVALID, errSub: "specify either BlueGreenUpdatePolicy or RollingUpdatePolicy, not both"},
		{name: "batch over 50 percent", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: rollingConfig(pct(55), nil, 0)},
			code: kiln.EINVALID, errSub: "MaximumBatchSize.Value must be between 5 and 50 percent, got 55"},
		{name: "batch over half the fleet", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: rollingConfig(count(3), nil, 0)},
			code: kiln.EINVALID, errSub: "MaximumBatchSize.Value is 3 instance(s), more than half of the fleet of 4 instance(s)"},
		{name: "unknown alarm", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: canaryConfig(pct(10), 0, 0, "latency", "nope")},
			code: kiln.EINVALID, errSub: `DeploymentConfig.AutoRollbackConfiguration.Alarms[1].AlarmName: alarm "nope" does not exist.`},
		{name: "too many alarms", cfg: c2, in: kiln.UpdateEndpointInput{DeploymentConfig: canaryConfig(pct(10), 0, 0, "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11")},
			code: kiln.EINVALID, errSub: "AutoRollbackConfiguration.Alarms must have between 1 and 10 entries, got 11"},
		{name: "canary with other variant names", cfg: renamed, in: kiln.UpdateEndpointInput{DeploymentConfig: canaryConfig(pct(25), 0, 0)},
			code: kiln.EINVALID, errSub: `TrafficRoutingConfiguration.Type CANARY needs endpoint config "c2" to have the same variants as the live endpoint config "c1" (v), got w.`},
		{name: "linear with other variant names", cfg: renamed, in: kiln.UpdateEndpointInput{DeploymentConfig: linearConfig(pct(25), 0, 0)},
			code: kiln.EINVALID, errSub: "Type LINEAR needs"},
		{name: "rolling with other variant names", cfg: renamed, in: kiln.UpdateEndpointInput{DeploymentConfig: rollingConfig(pct(25), nil, 0)},
			code: kiln.EINVALID, errSub: "DeploymentConfig.RollingUpdatePolicy needs"},
		{name: "unknown model", cfg: config("c3", pv{name: "v", model: "ghost", count: 1}),
			code: kiln.ENOTFOUND, errSub: `Could not find model "ghost".`},
		{name: "exclude without retain", cfg: c2, in: kiln.UpdateEndpointInput{ExcludeRetainedVariantProperties: []kiln.VariantProperty{{VariantPropertyType: "DesiredWeight"}}},
			code: kiln.EINVALID, errSub: "ExcludeRetainedVariantProperties applies only when RetainAllVariantProperties is true"},
		{name: "unknown excluded property", cfg: c2, in: kiln.UpdateEndpointInput{RetainAllVariantProperties: true, ExcludeRetainedVariantProperties: []kiln.VariantProperty{{VariantPropertyType: "Color"}}},
			code: kiln.EINVALID, errSub: `ExcludeRetainedVariantProperties[0].VariantPropertyType "Color"`},
		{name: "retain and give a deployment config", cfg: c2, in: kiln.UpdateEndpointInput{RetainDeploymentConfig: true, DeploymentConfig: canaryConfig(pct(10), 0, 0)},
			code: kiln.EINVALID, errSub: "either DeploymentConfig or RetainDeploymentConfig"},
		{name: "config name mismatch", cfg: c2, in: kiln.UpdateEndpointInput{EndpointConfigName: "c9"},
			code: kiln.EINVALID, errSub: `EndpointConfigName "c9" does not match`},
		{name: "invalid config", cfg: config("c2", pv{name: "v", model: "m2", count: 0}),
			code: kiln.EINVALID, errSub: "InitialInstanceCount must be between 1 and 100, got 0"},
		{name: "update while one runs", ep: func() kiln.Endpoint {
			ep, err := StartUpdate(live, c2, testModels, kiln.UpdateEndpointInput{}, nil, t0)
			if err != nil {
				t.Fatal(err)
			}
			return ep
		}(), cfg: c2, code: kiln.ECONFLICT, errSub: `Cannot update in-progress endpoint "` + testARN + `".`},
		{name: "update while creating", ep: func() kiln.Endpoint {
			ep, _ := StartCreate(kiln.CreateEndpointInput{EndpointName: "ep"}, c1, testModels, testARN, t0)
			return ep
		}(), cfg: c2, code: kiln.ECONFLICT, errSub: "Cannot update in-progress endpoint"},
		{name: "update of a failed endpoint", ep: func() kiln.Endpoint {
			ep := cloneEndpoint(live)
			ep.EndpointStatus = kiln.StatusFailed
			return ep
		}(), cfg: c2, code: kiln.EINVALID, errSub: "because its status is Failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := tt.ep
			if ep.EndpointName == "" {
				ep = live
			}
			before := cloneEndpoint(ep)
			got, err := StartUpdate(ep, tt.cfg, testModels, tt.in, known, t0)
			if err == nil {
				t.Fatalf("no error; want %s containing %q", tt.code, tt.errSub)
			}
			if kiln.ErrorCode(err) != tt.code || !strings.Contains(err.Error(), tt.errSub) {
				t.Fatalf("got %s %q, want %s containing %q", kiln.ErrorCode(err), err, tt.code, tt.errSub)
			}
			if !reflect.DeepEqual(got, before) || !reflect.DeepEqual(ep, before) {
				t.Fatal("a refused update changed the record")
			}
		})
	}
}

func TestStartUpdateRecord(t *testing.T) {
	live := created(t, c1).ep
	dc := canaryConfig(pct(25), 600, 300, "latency")
	ep, err := StartUpdate(live, c2, testModels, kiln.UpdateEndpointInput{EndpointConfigName: "c2", DeploymentConfig: dc},
		func(string) bool { return true }, t0)
	if err != nil {
		t.Fatal(err)
	}
	d := ep.Deployment
	if d == nil || d.Kind != kiln.DeployBlueGreen || d.EndpointConfigName != "c2" || d.Phase != kiln.PhaseProvisioning || len(d.Green) != 1 || len(d.Blue) != 1 {
		t.Fatalf("deployment %+v", d)
	}
	if ep.EndpointStatus != kiln.StatusUpdating || ep.EndpointConfigName != "c1" {
		t.Errorf("endpoint %s on %s, want Updating on c1 until done", ep.EndpointStatus, ep.EndpointConfigName)
	}
	var green kiln.Fleet
	for _, f := range ep.Fleets {
		if f.ID == d.Green[0] {
			green = f
		}
	}
	if green.InstanceCount != 0 || green.TrafficShare != 0 || green.EndpointConfigName != "c2" || green.Container.Image != "serve --version 2" || green.Container.Environment["A"] != "b" {
		t.Errorf("green fleet %+v: want it declared, not yet launched", green)
	}
	if green.ID == live.Fleets[0].ID {
		t.Error("green reuses blue's ID")
	}
	// The stored config is a copy: changing the caller's changes nothing.
	dc.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.CanarySize.Value = 50
	if d.DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.CanarySize.Value != 25 {
		t.Error("the deployment shares its config with the caller")
	}
	// The models' environment is copied too.
	green.Container.Environment["A"] = "changed"
	if testModels["m2"].PrimaryContainer.Environment["A"] != "b" {
		t.Error("the fleet shares its environment with the model")
	}
}

func TestStartCreateValidation(t *testing.T) {
	tests := []struct {
		name   string
		in     kiln.CreateEndpointInput
		cfg    kiln.EndpointConfig
		code   string
		errSub string
	}{
		{"bad name", kiln.CreateEndpointInput{EndpointName: "-x"}, c1, kiln.EINVALID, "EndpointName"},
		{"unknown model", kiln.CreateEndpointInput{EndpointName: "ep"}, config("c", pv{name: "v", model: "ghost", count: 1}), kiln.ENOTFOUND, `Could not find model "ghost".`},
		{"bad deployment config", kiln.CreateEndpointInput{EndpointName: "ep", DeploymentConfig: canaryConfig(pct(70), 0, 0)}, c1, kiln.EINVALID, "CanarySize"},
		{"config mismatch", kiln.CreateEndpointInput{EndpointName: "ep", EndpointConfigName: "other"}, c1, kiln.EINVALID, "does not match"},
		{"too many tags", kiln.CreateEndpointInput{EndpointName: "ep", Tags: make([]kiln.Tag, 51)}, c1, kiln.EINVALID, "Tags has 51 entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := StartCreate(tt.in, tt.cfg, testModels, testARN, t0)
			if kiln.ErrorCode(err) != tt.code || err == nil || !strings.Contains(err.Error(), tt.errSub) {
				t.Fatalf("got %v, want %s containing %q", err, tt.code, tt.errSub)
			}
		})
	}
	models := map[string]kiln.Model{"m1": {ModelName: "m1"}}
	if _, err := StartCreate(kiln.CreateEndpointInput{EndpointName: "ep"}, c1, models, testARN, t0); kiln.ErrorCode(err) != kiln.EINVALID {
		t.Errorf("a model without a container: %v", err)
	}
}

func TestStartWeightsValidation(t *testing.T) {
	live := created(t, config("c1", pv{name: "a", model: "m1", count: 2}, pv{name: "b", model: "m1", count: 1})).ep
	f := func(v float64) *float64 { return &v }
	n := func(v int) *int { return &v }
	tests := []struct {
		name    string
		ep      *kiln.Endpoint
		desired []kiln.DesiredWeightAndCapacity
		code    string
		errSub  string
	}{
		{"none", nil, nil, kiln.EINVALID, "DesiredWeightsAndCapacities must have between 1 and 10 entries, got 0"},
		{"unknown variant", nil, []kiln.DesiredWeightAndCapacity{{VariantName: "z", DesiredWeight: f(1)}}, kiln.EINVALID, `DesiredWeightsAndCapacities[0].VariantName: endpoint "` + testARN + `" has no variant "z".`},
		{"twice", nil, []kiln.DesiredWeightAndCapacity{{VariantName: "a", DesiredWeight: f(1)}, {VariantName: "a", DesiredWeight: f(2)}}, kiln.EINVALID, "DesiredWeightsAndCapacities[1].VariantName: variant \"a\" is given more than once"},
		{"nothing to change", nil, []kiln.DesiredWeightAndCapacity{{VariantName: "a"}}, kiln.EINVALID, "needs DesiredWeight or DesiredInstanceCount"},
		{"negative weight", nil, []kiln.DesiredWeightAndCapacity{{VariantName: "a", DesiredWeight: f(-1)}}, kiln.EINVALID, "DesiredWeightsAndCapacities[0].DesiredWeight must be a number of at least 0"},
		{"NaN weight", nil, []kiln.DesiredWeightAndCapacity{{VariantName: "a", DesiredWeight: f(math.NaN())}}, kiln.EINVALID, "DesiredWeight must be a number"},
		{"zero instances", nil, []kiln.DesiredWeightAndCapacity{{VariantName: "a", DesiredInstanceCount: n(0)}}, kiln.EINVALID, "DesiredInstanceCount must be between 1 and 100, got 0"},
		{"all weights zero", nil, []kiln.DesiredWeightAndCapacity{{VariantName: "a", DesiredWeight: f(0)}, {VariantName: "b", DesiredWeight: f(0)}}, kiln.EINVALID, "at least one variant must keep a weight above 0"},
		{"while an update runs", func() *kiln.Endpoint {
			ep, err := StartWeights(live, []kiln.DesiredWeightAndCapacity{{VariantName: "a", DesiredWeight: f(2)}}, t0)
			if err != nil {
				t.Fatal(err)
			}
			return &ep
		}(), []kiln.DesiredWeightAndCapacity{{VariantName: "a", DesiredWeight: f(3)}}, kiln.ECONFLICT, "Cannot update in-progress endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := live
			if tt.ep != nil {
				ep = *tt.ep
			}
			_, err := StartWeights(ep, tt.desired, t0)
			if err == nil || kiln.ErrorCode(err) != tt.code || !strings.Contains(err.Error(), tt.errSub) {
				t.Fatalf("got %s %v, want %s containing %q", kiln.ErrorCode(err), err, tt.code, tt.errSub)
			}
		})
	}
}

package deploy

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/plan"
)

// The Start functions are what the API layer calls to begin something. Each
// validates everything it is given (errors carry kiln codes and messages
// that name the field) and returns the record to write; writing it is the
// start. They change nothing they are given.

// Variant properties RetainAllVariantProperties keeps.
const (
	propInstanceCount = "DesiredInstanceCount"
	propWeight        = "DesiredWeight"
	propDataCapture   = "DataCaptureConfig"
)

// StartCreate returns the record of a new endpoint running cfg. Its fleets
// are provisioned in full as soon as it is written; the controller makes it
// InService once every instance is healthy. models holds the models cfg
// names, by name; arn is the endpoint's ARN. in.DeploymentConfig is kept as
// LastDeploymentConfig, for an update with RetainDeploymentConfig.
func StartCreate(in kiln.CreateEndpointInput, cfg kiln.EndpointConfig, models map[string]kiln.Model, arn string, now time.Time) (kiln.Endpoint, error) {
	if err := kiln.ValidateName("EndpointName", in.EndpointName); err != nil {
		return kiln.Endpoint{}, err
	}
	if in.EndpointConfigName != "" && in.EndpointConfigName != cfg.EndpointConfigName {
		return kiln.Endpoint{}, kiln.Errorf(kiln.EINVALID, "EndpointConfigName %q does not match the endpoint config given, %q.", in.EndpointConfigName, cfg.EndpointConfigName)
	}
	if err := cfg.Validate(); err != nil {
		return kiln.Endpoint{}, err
	}
	if err := in.DeploymentConfig.Validate(); err != nil {
		return kiln.Endpoint{}, err
	}
	if len(in.Tags) > kiln.MaxTags {
		return kiln.Endpoint{}, kiln.Errorf(kiln.EINVALID, "Tags has %d entries; at most %d are allowed.", len(in.Tags), kiln.MaxTags)
	}
	if _, err := minRequests(kiln.Endpoint{EndpointName: in.EndpointName, Tags: in.Tags}, nil); err != nil {
		return kiln.Endpoint{}, err
	}
	ep := kiln.Endpoint{
		EndpointName:         in.EndpointName,
		EndpointArn:          arn,
		EndpointConfigName:   cfg.EndpointConfigName,
		EndpointStatus:       kiln.StatusCreating,
		CreationTime:         now,
		LastModifiedTime:     now,
		LastDeploymentConfig: cloneDeploymentConfig(in.DeploymentConfig),
		Tags:                 slices.Clone(in.Tags),
	}
	d := &kiln.Deployment{
		ID:                 deploymentID(&ep, kiln.DeployCreate),
		Kind:               kiln.DeployCreate,
		EndpointConfigName: cfg.EndpointConfigName,
		StartTime:          now,
		Phase:              kiln.PhaseProvisioning,
		PhaseStartTime:     now,
	}
	for i, v := range cfg.ProductionVariants {
		c, err := container(models, v, i)
		if err != nil {
			return kiln.Endpoint{}, err
		}
		f := newFleet(&ep, cfg.EndpointConfigName, v, c)
		f.InstanceCount, f.ActiveInstanceCount, f.TrafficShare = v.InitialInstanceCount, v.InitialInstanceCount, 1
		ep.Fleets = append(ep.Fleets, f)
		d.Green = append(d.Green, f.ID)
		s := summary(v.VariantName, c, v.Weight(), v.InitialInstanceCount, now)
		d.Target = append(d.Target, s)
		s.VariantStatus = []kiln.VariantStatus{{Status: kiln.VariantCreating,
			StatusMessage: fmt.Sprintf("Launching %d instance(s).", v.InitialInstanceCount), StartTime: now}}
		ep.ProductionVariants = append(ep.ProductionVariants, s)
	}
	ep.Deployment = d
	return ep, nil
}

// StartUpdate returns ep with an update to newCfg started (UpdateEndpoint).
// alarmExists tells whether a rollback alarm exists (nil: none does). The
// controller provisions the new fleets once the record is written.
//
// It refuses, with kiln.ECONFLICT, an endpoint that is being created or
// updated ("Cannot update in-progress endpoint"), and with kiln.EINVALID one
// that is not in service, a DeploymentConfig beyond its limits or naming
// unknown alarms, CANARY, LINEAR or rolling updates that change the
// variants' names, and plans the fleet sizes do not allow.
func StartUpdate(ep kiln.Endpoint, newCfg kiln.EndpointConfig, models map[string]kiln.Model, in kiln.UpdateEndpointInput, alarmExists func(string) bool, now time.Time) (kiln.Endpoint, error) {
	if err := updatable(ep); err != nil {
		return ep, err
	}
	if in.EndpointConfigName != "" && in.EndpointConfigName != newCfg.EndpointConfigName {
		return ep, kiln.Errorf(kiln.EINVALID, "EndpointConfigName %q does not match the endpoint config given, %q.", in.EndpointConfigName, newCfg.EndpointConfigName)
	}
	if err := newCfg.Validate(); err != nil {
		return ep, err
	}
	retain := map[string]bool{propInstanceCount: in.RetainAllVariantProperties, propWeight: in.RetainAllVariantProperties}
	if len(in.ExcludeRetainedVariantProperties) > 0 && !in.RetainAllVariantProperties {
		return ep, kiln.Errorf(kiln.EINVALID, "ExcludeRetainedVariantProperties applies only when RetainAllVariantProperties is true.")
	}
	for i, p := range in.ExcludeRetainedVariantProperties {
		switch p.VariantPropertyType {
		case propInstanceCount, propWeight:
			retain[p.VariantPropertyType] = false
		case propDataCapture: // Kiln captures no data: nothing to keep
		default:
			return ep, kiln.Errorf(kiln.EINVALID, "ExcludeRetainedVariantProperties[%d].VariantPropertyType %q is not one of DesiredInstanceCount, DesiredWeight, DataCaptureConfig.", i, p.VariantPropertyType)
		}
	}
	dc := in.DeploymentConfig
	if in.RetainDeploymentConfig {
		if dc != nil {
			return ep, kiln.Errorf(kiln.EINVALID, "Specify either DeploymentConfig or RetainDeploymentConfig, not both.")
		}
		dc = ep.LastDeploymentConfig
	}
	if err := dc.Validate(); err != nil {
		return ep, err
	}
	for i, name := range dc.AlarmNames() {
		if alarmExists == nil || !alarmExists(name) {
			return ep, kiln.Errorf(kiln.EINVALID, "DeploymentConfig.AutoRollbackConfiguration.Alarms[%d].AlarmName: alarm %q does not exist.", i, name)
		}
	}

	kind := kiln.DeployBlueGreen
	if dc != nil && dc.RollingUpdatePolicy != nil {
		kind = kiln.DeployRolling
	}
	blue, err := liveFleets(ep)
	if err != nil {
		return ep, err
	}
	if err := sameVariants(ep, newCfg, dc); err != nil {
		return ep, err
	}

	live := map[string]kiln.VariantSummary{}
	for _, pv := range previous(ep, blue) {
		live[pv.VariantName] = pv
	}
	next := cloneEndpoint(ep)
	d := &kiln.Deployment{
		ID:                 deploymentID(&next, kind),
		Kind:               kind,
		EndpointConfigName: newCfg.EndpointConfigName,
		DeploymentConfig:   cloneDeploymentConfig(dc),
		StartTime:          now,
		Phase:              kiln.PhaseProvisioning,
		PhaseStartTime:     now,
		Previous:           previous(ep, blue),
	}
	for _, f := range blue {
		d.Blue = append(d.Blue, f.ID)
	}
	targets := map[string]kiln.VariantSummary{}
	for i, v := range newCfg.ProductionVariants {
		c, err := container(models, v, i)
		if err != nil {
			return ep, err
		}
		count, weight := v.InitialInstanceCount, v.Weight()
		if old, ok := live[v.VariantName]; ok {
			if retain[propInstanceCount] {
				count = old.DesiredInstanceCount
			}
			if retain[propWeight] {
				weight = old.DesiredWeight
			}
		}
		if err := checkPlan(kind, dc, v.VariantName, live[v.VariantName].CurrentInstanceCount, count); err != nil {
			return ep, err
		}
		f := newFleet(&next, newCfg.EndpointConfigName, v, c)
		if _, ok := live[v.VariantName]; !ok && kind == kiln.DeployBlueGreen {
			f.TrafficShare = 1 // the variant's only fleet; its weight of 0 keeps traffic off it
		}
		next.Fleets = append(next.Fleets, f)
		d.Green = append(d.Green, f.ID)
		s := summary(v.VariantName, c, weight, count, now)
		targets[v.VariantName] = s
		d.Target = append(d.Target, s)
	}
	if total := totalWeight(d.Target); total <= 0 {
		return ep, kiln.Errorf(kiln.EINVALID, "ProductionVariants: at least one variant must keep a weight above 0.")
	}

	starting := kiln.VariantStatus{Status: kiln.VariantUpdating,
		StatusMessage: fmt.Sprintf("Updating to endpoint config %q.", newCfg.EndpointConfigName), StartTime: now}
	for i := range next.ProductionVariants {
		pv := &next.ProductionVariants[i]
		t := targets[pv.VariantName] // zero for a variant the new config drops
		pv.DesiredWeight, pv.DesiredInstanceCount = t.DesiredWeight, t.DesiredInstanceCount
		pv.VariantStatus = []kiln.VariantStatus{starting}
	}
	for _, t := range d.Target {
		if _, ok := live[t.VariantName]; !ok {
			s := t
			s.CurrentWeight, s.CurrentInstanceCount = 0, 0
			s.VariantStatus = []kiln.VariantStatus{starting}
			next.ProductionVariants = append(next.ProductionVariants, s)
		}
	}
	if d.MinRequestsPerBake, err = minRequests(ep, dc); err != nil {
		return ep, err
	}
	next.EndpointStatus = kiln.StatusUpdating
	next.LastModifiedTime = now
	next.Deployment = d
	return next, nil
}

// minRequests is the evidence an update's bakes need: the DeploymentConfig's
// MinRequestsPerBake, or else the endpoint's kiln:MinRequestsPerBake tag.
func minRequests(ep kiln.Endpoint, dc *kiln.DeploymentConfig) (int, error) {
	if dc != nil && dc.MinRequestsPerBake > 0 {
		return dc.MinRequestsPerBake, nil
	}
	for _, t := range ep.Tags {
		if t.Key != kiln.MinRequestsTag {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(t.Value))
		if err != nil || n < 0 || n > kiln.MaxMinRequestsPerBake {
			return 0, kiln.Errorf(kiln.EINVALID, "Tag %s of endpoint %q is %q: it must be a whole number from 0 to %d.", kiln.MinRequestsTag, ep.EndpointName, t.Value, kiln.MaxMinRequestsPerBake)
		}
		return n, nil
	}
	return 0, nil
}

// StartWeights returns ep with UpdateEndpointWeightsAndCapacities started:
// the controller launches any extra instances, then moves the weights and
// traffic, then stops any instances no longer wanted.
func StartWeights(ep kiln.Endpoint, desired []kiln.DesiredWeightAndCapacity, now time.Time) (kiln.Endpoint, error) {
	if err := updatable(ep); err != nil {
		return ep, err
	}
	if n := len(desired); n < 1 || n > kiln.MaxVariants {
		return ep, kiln.Errorf(kiln.EINVALID, "DesiredWeightsAndCapacities must have between 1 and %d entries, got %d.", kiln.MaxVariants, n)
	}
	blue, err := liveFleets(ep)
	if err != nil {
		return ep, err
	}
	next := cloneEndpoint(ep)
	byName := map[string]int{}
	for i, pv := range next.ProductionVariants {
		byName[pv.VariantName] = i
	}
	target := previous(ep, blue)
	seen := map[string]bool{}
	for i, dw := range desired {
		field := fmt.Sprintf("DesiredWeightsAndCapacities[%d]", i)
		j, ok := byName[dw.VariantName]
		if !ok {
			return ep, kiln.Errorf(kiln.EINVALID, "%s.VariantName: endpoint %q has no variant %q.", field, ep.EndpointArn, dw.VariantName)
		}
		if seen[dw.VariantName] {
			return ep, kiln.Errorf(kiln.EINVALID, "%s.VariantName: variant %q is given more than once.", field, dw.VariantName)
		}
		seen[dw.VariantName] = true
		if dw.DesiredWeight == nil && dw.DesiredInstanceCount == nil {
			return ep, kiln.Errorf(kiln.EINVALID, "%s needs DesiredWeight or DesiredInstanceCount.", field)
		}
		if w := dw.DesiredWeight; w != nil {
			if !(*w >= 0) || math.IsInf(*w, 0) || *w > 1e9 {
				return ep, kiln.Errorf(kiln.EINVALID, "%s.DesiredWeight must be a number of at least 0, got %v.", field, *w)
			}
			target[j].DesiredWeight, target[j].CurrentWeight = *w, *w
		}
		if n := dw.DesiredInstanceCount; n != nil {
			if *n < 1 || *n > kiln.MaxInstancesPerVariant {
				return ep, kiln.Errorf(kiln.EINVALID, "%s.DesiredInstanceCount must be between 1 and %d, got %d.", field, kiln.MaxInstancesPerVariant, *n)
			}
			target[j].DesiredInstanceCount, target[j].CurrentInstanceCount = *n, *n
		}
		next.ProductionVariants[j].DesiredWeight = target[j].DesiredWeight
		next.ProductionVariants[j].DesiredInstanceCount = target[j].DesiredInstanceCount
		next.ProductionVariants[j].VariantStatus = []kiln.VariantStatus{{Status: kiln.VariantUpdating,
			StatusMessage: "Updating weight and capacity.", StartTime: now}}
	}
	if totalWeight(target) <= 0 {
		return ep, kiln.Errorf(kiln.EINVALID, "DesiredWeightsAndCapacities: at least one variant must keep a weight above 0.")
	}
	d := &kiln.Deployment{
		ID:                 deploymentID(&next, kiln.DeployWeights),
		Kind:               kiln.DeployWeights,
		EndpointConfigName: ep.EndpointConfigName,
		StartTime:          now,
		Phase:              kiln.PhaseProvisioning,
		PhaseStartTime:     now,
		Target:             target,
		Previous:           previous(ep, blue),
	}
	for _, f := range blue {
		d.Blue = append(d.Blue, f.ID)
	}
	next.EndpointStatus = kiln.StatusUpdating
	next.LastModifiedTime = now
	next.Deployment = d
	return next, nil
}

// RequestStop returns ep with its update set to roll back, for reason (for
// instance "stopped by operator"; FailureReason will read "Update rolled
// back because it was <reason>."). Stopping an update rolls it back: there
// is no state half-way between two configs to stop in. It is idempotent
// while the rollback runs. It refuses (kiln.EINVALID) an endpoint with no
// update in progress — going back to an earlier config is an UpdateEndpoint
// with that config — and the creation of an endpoint, which has nothing to
// roll back to; and (kiln.ECONFLICT) an update that has started terminating
// the old fleets.
func RequestStop(ep kiln.Endpoint, reason string, now time.Time) (kiln.Endpoint, error) {
	d := ep.Deployment
	if d == nil {
		return ep, kiln.Errorf(kiln.EINVALID, "Endpoint %q has no update in progress to stop or roll back. To go back to an earlier endpoint config, update the endpoint with it.", ep.EndpointArn)
	}
	if d.Kind == kiln.DeployCreate {
		return ep, kiln.Errorf(kiln.EINVALID, "Endpoint %q is being created, so there is nothing to roll back to. Delete the endpoint instead.", ep.EndpointArn)
	}
	if d.Phase == kiln.PhaseRollingBack || d.RollbackReason != "" {
		return ep, nil
	}
	terminating := d.Phase == kiln.PhaseTerminating
	for _, id := range d.Blue {
		if !slices.ContainsFunc(ep.Fleets, func(f kiln.Fleet) bool { return f.ID == id }) {
			terminating = true
		}
	}
	if terminating {
		return ep, kiln.Errorf(kiln.ECONFLICT, "The update of endpoint %q is terminating the previous fleets and can no longer be rolled back.", ep.EndpointArn)
	}
	if strings.TrimSpace(reason) == "" {
		reason = "stopped by operator"
	}
	next := cloneEndpoint(ep)
	next.Deployment.StopRequested = true
	next.Deployment.RollbackCause = kiln.CauseOperator
	next.Deployment.RollbackReason = stopReason(reason)
	next.LastModifiedTime = now
	return next, nil
}

// updatable refuses endpoints that cannot take an update now.
func updatable(ep kiln.Endpoint) error {
	if ep.Live() {
		return nil
	}
	switch {
	case ep.Deployment != nil, ep.EndpointStatus == kiln.StatusCreating, ep.EndpointStatus == kiln.StatusUpdating,
		ep.EndpointStatus == kiln.StatusSystemUpdating, ep.EndpointStatus == kiln.StatusRollingBack,
		ep.EndpointStatus == kiln.StatusDeleting:
		return kiln.Errorf(kiln.ECONFLICT, "Cannot update in-progress endpoint %q.", ep.EndpointArn)
	}
	return kiln.Errorf(kiln.EINVALID, "Cannot update endpoint %q because its status is %s; delete it and create it again.", ep.EndpointArn, ep.EndpointStatus)
}

// liveFleets returns the fleets of a settled endpoint: exactly one per
// variant.
func liveFleets(ep kiln.Endpoint) ([]kiln.Fleet, error) {
	var out []kiln.Fleet
	for _, pv := range ep.ProductionVariants {
		fs := ep.FleetsOf(pv.VariantName)
		if len(fs) != 1 {
			return nil, fmt.Errorf("endpoint %s: variant %q has %d fleets, want 1 when no deployment runs", ep.EndpointName, pv.VariantName, len(fs))
		}
		out = append(out, fs[0])
	}
	if len(out) != len(ep.Fleets) {
		return nil, fmt.Errorf("endpoint %s has fleets of variants it does not show", ep.EndpointName)
	}
	return out, nil
}

// sameVariants enforces the Kiln rule that CANARY, LINEAR and rolling
// updates keep the variants' names (every variant shifts in lockstep);
// ALL_AT_ONCE may add or remove variants.
func sameVariants(ep kiln.Endpoint, cfg kiln.EndpointConfig, dc *kiln.DeploymentConfig) error {
	field := ""
	switch {
	case dc == nil:
	case dc.RollingUpdatePolicy != nil:
		field = "DeploymentConfig.RollingUpdatePolicy"
	case dc.BlueGreenUpdatePolicy != nil:
		if t := dc.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.Type; t == kiln.Canary || t == kiln.Linear {
			field = "DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.Type " + t
		}
	}
	if field == "" {
		return nil
	}
	var live, next []string
	for _, pv := range ep.ProductionVariants {
		live = append(live, pv.VariantName)
	}
	for _, v := range cfg.ProductionVariants {
		next = append(next, v.VariantName)
	}
	slices.Sort(live)
	slices.Sort(next)
	if !slices.Equal(live, next) {
		return kiln.Errorf(kiln.EINVALID, "%s needs endpoint config %q to have the same variants as the live endpoint config %q (%s), got %s. Use ALL_AT_ONCE to add or remove variants.",
			field, cfg.EndpointConfigName, ep.EndpointConfigName, strings.Join(live, ", "), strings.Join(next, ", "))
	}
	return nil
}

// checkPlan makes the variant's plan, so that sizes the plan does not allow
// are refused before anything starts.
func checkPlan(kind string, dc *kiln.DeploymentConfig, variant string, blueSize, greenSize int) error {
	var err error
	if kind == kiln.DeployRolling {
		_, err = plan.RollingResize(dc.RollingUpdatePolicy, blueSize, greenSize)
	} else {
		_, err = plan.BlueGreen(dc, greenSize)
	}
	if err != nil {
		return kiln.Errorf(kiln.ErrorCode(err), "Variant %q: %s", variant, kiln.ErrorMessage(err))
	}
	return nil
}

func container(models map[string]kiln.Model, v kiln.ProductionVariant, i int) (kiln.ContainerDef, error) {
	m, ok := models[v.ModelName]
	if !ok {
		return kiln.ContainerDef{}, kiln.Errorf(kiln.ENOTFOUND, "Could not find model %q.", v.ModelName)
	}
	if m.PrimaryContainer == nil {
		return kiln.ContainerDef{}, kiln.Errorf(kiln.EINVALID, "ProductionVariants[%d].ModelName: model %q has no PrimaryContainer.", i, v.ModelName)
	}
	return cloneContainer(*m.PrimaryContainer), nil
}

// serial takes the endpoint's next serial number.
func serial(ep *kiln.Endpoint) int {
	n := max(ep.NextFleetSerial, 1)
	ep.NextFleetSerial = n + 1
	return n
}

func deploymentID(ep *kiln.Endpoint, kind string) string {
	return fmt.Sprintf("%s-%d", strings.ToLower(kind), serial(ep))
}

// newFleet declares a fleet with no instance yet.
func newFleet(ep *kiln.Endpoint, config string, v kiln.ProductionVariant, c kiln.ContainerDef) kiln.Fleet {
	return kiln.Fleet{
		ID:                 fmt.Sprintf("%s-%d", v.VariantName, serial(ep)),
		VariantName:        v.VariantName,
		EndpointConfigName: config,
		ModelName:          v.ModelName,
		InstanceType:       v.InstanceType,
		Container:          c,
	}
}

func summary(name string, c kiln.ContainerDef, weight float64, count int, now time.Time) kiln.VariantSummary {
	return kiln.VariantSummary{
		VariantName:          name,
		DeployedImages:       []kiln.DeployedImage{{SpecifiedImage: c.Image, ResolvedImage: c.Image, ResolutionTime: now}},
		CurrentWeight:        weight,
		DesiredWeight:        weight,
		CurrentInstanceCount: count,
		DesiredInstanceCount: count,
	}
}

// previous returns the live variants, what a rollback restores, with the
// instance counts their fleets really have.
func previous(ep kiln.Endpoint, fleets []kiln.Fleet) []kiln.VariantSummary {
	out := cloneSummaries(ep.ProductionVariants)
	for i := range out {
		out[i].VariantStatus = nil
		for _, f := range fleets {
			if f.VariantName == out[i].VariantName {
				out[i].CurrentInstanceCount = f.InstanceCount
			}
		}
	}
	return out
}

func totalWeight(s []kiln.VariantSummary) float64 {
	t := 0.0
	for _, v := range s {
		t += v.DesiredWeight
	}
	return t
}

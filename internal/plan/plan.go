package plan

import (
	"time"

	"github.com/kiln-serve/kiln"
)

// Step kinds.
const (
	Canary = "canary" // the canary part of green takes traffic
	Linear = "linear" // one more linear step of green takes traffic
	All    = "all"    // ALL_AT_ONCE: all of green takes traffic
	Final  = "final"  // all traffic on green, blue still running: the last bake
	Batch  = "batch"  // rolling: a batch of new instances is provisioned and takes traffic
	Retire = "retire" // rolling: the matching share of old instances is retired
)

// Names of the settings a bake comes from, as SageMaker's status messages
// quote them.
const (
	WaitInterval    = "WaitIntervalInSeconds"
	TerminationWait = "TerminationWaitInSeconds"
)

// Step is one routing state of a deployment of one variant.
type Step struct {
	Kind string
	// GreenActive is how many instances of the new fleet take traffic (in a
	// rolling plan, also how many run).
	GreenActive int
	// GreenShare is the new fleet's share of the variant's traffic, from 0
	// to 1; the old fleet gets the rest.
	GreenShare float64
	// BlueRetired is how many instances of the old fleet have been retired
	// once the step is done. Always 0 in a blue/green plan: blue keeps every
	// instance until it is terminated after the final step.
	BlueRetired int
	// Bake is how long to watch the alarms before the next step, and
	// BakeSetting the setting it comes from (WaitInterval or
	// TerminationWait); "" when the step has no bake of its own.
	Bake        time.Duration
	BakeSetting string
}

// Instances converts a capacity size to a number of instances of a fleet of
// n: INSTANCE_COUNT is taken as is, CAPACITY_PERCENT p is
// max(1, floor(p×n/100)). Unknown types give 0.
func Instances(s *kiln.CapacitySize, n int) int {
	if s == nil {
		return 0
	}
	switch s.Type {
	case kiln.InstanceCount:
		return s.Value
	case kiln.CapacityPercent:
		return max(1, s.Value*n/100)
	}
	return 0
}

// BlueGreen returns the steps of a blue/green update whose green fleet has
// greenSize instances: the traffic steps of the policy, then the final
// step. A nil cfg, or one without BlueGreenUpdatePolicy, means ALL_AT_ONCE
// with no bake. Errors are kiln.EINVALID and name the field.
func BlueGreen(cfg *kiln.DeploymentConfig, greenSize int) ([]Step, error) {
	if greenSize < 1 {
		return nil, kiln.Errorf(kiln.EINVALID, "The green fleet must have at least 1 instance, got %d.", greenSize)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg != nil && cfg.RollingUpdatePolicy != nil {
		return nil, kiln.Errorf(kiln.EINVALID, "DeploymentConfig has a RollingUpdatePolicy, not a BlueGreenUpdatePolicy.")
	}
	var bg *kiln.BlueGreenUpdatePolicy
	if cfg != nil {
		bg = cfg.BlueGreenUpdatePolicy
	}
	if bg == nil {
		return []Step{
			{Kind: All, GreenActive: greenSize, GreenShare: 1, BakeSetting: WaitInterval},
			{Kind: Final, GreenActive: greenSize, GreenShare: 1, BakeSetting: TerminationWait},
		}, nil
	}
	const field = "DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration."
	tr := bg.TrafficRoutingConfiguration
	wait := seconds(tr.WaitIntervalInSeconds)
	share := func(active int) float64 { return float64(active) / float64(greenSize) }
	var steps []Step
	switch tr.Type {
	case kiln.AllAtOnce:
		steps = append(steps, Step{Kind: All, GreenActive: greenSize, GreenShare: 1, Bake: wait, BakeSetting: WaitInterval})
	case kiln.Canary:
		n, err := half(field+"CanarySize", tr.CanarySize, greenSize, "green fleet")
		if err != nil {
			return nil, err
		}
		steps = append(steps, Step{Kind: Canary, GreenActive: n, GreenShare: share(n), Bake: wait, BakeSetting: WaitInterval})
	case kiln.Linear:
		n, err := half(field+"LinearStepSize", tr.LinearStepSize, greenSize, "green fleet")
		if err != nil {
			return nil, err
		}
		for active := n; ; active += n {
			active = min(active, greenSize)
			s := Step{Kind: Linear, GreenActive: active, GreenShare: share(active), Bake: wait, BakeSetting: WaitInterval}
			if active == greenSize {
				s.GreenShare = 1 // exactly, whatever the float division gives
			}
			steps = append(steps, s)
			if active == greenSize {
				break
			}
		}
	default:
		// Validate has refused any other type.
		return nil, kiln.Errorf(kiln.EINVALID, "%sType %q is not one of ALL_AT_ONCE, CANARY, LINEAR.", field, tr.Type)
	}
	steps = append(steps, Step{Kind: Final, GreenActive: greenSize, GreenShare: 1,
		Bake: seconds(bg.TerminationWaitInSeconds), BakeSetting: TerminationWait})
	return steps, nil
}

// Rolling returns the steps of a rolling update of a fleet of size
// instances that keeps its size.
func Rolling(policy *kiln.RollingUpdatePolicy, size int) ([]Step, error) {
	return RollingResize(policy, size, size)
}

// RollingResize returns the steps of a rolling update that replaces an old
// fleet of blueSize instances with a new one of greenSize: for every batch a
// Batch step then a Retire step. Batches are MaximumBatchSize of the new
// fleet; old instances are retired in proportion, never ahead of the new
// capacity that replaces them, and all of them by the last step.
func RollingResize(policy *kiln.RollingUpdatePolicy, blueSize, greenSize int) ([]Step, error) {
	if policy == nil {
		return nil, kiln.Errorf(kiln.EINVALID, "DeploymentConfig.RollingUpdatePolicy is required.")
	}
	if greenSize < 1 || blueSize < 1 {
		return nil, kiln.Errorf(kiln.EINVALID, "A rolling update needs old and new fleets of at least 1 instance, got %d and %d.", blueSize, greenSize)
	}
	if err := (&kiln.DeploymentConfig{RollingUpdatePolicy: policy}).Validate(); err != nil {
		return nil, err
	}
	batch, err := half("DeploymentConfig.RollingUpdatePolicy.MaximumBatchSize", policy.MaximumBatchSize, greenSize, "fleet")
	if err != nil {
		return nil, err
	}
	wait := seconds(policy.WaitIntervalInSeconds)
	share := func(green, blue int) float64 {
		if blue == 0 {
			return 1
		}
		return float64(green) / float64(green+blue)
	}
	var steps []Step
	retired := 0
	for green := 0; green < greenSize; {
		green = min(green+batch, greenSize)
		steps = append(steps, Step{Kind: Batch, GreenActive: green, GreenShare: share(green, blueSize-retired),
			BlueRetired: retired, Bake: wait, BakeSetting: WaitInterval})
		retired = green * blueSize / greenSize // floor: never ahead of the new capacity
		steps = append(steps, Step{Kind: Retire, GreenActive: green, GreenShare: share(green, blueSize-retired),
			BlueRetired: retired})
	}
	return steps, nil
}

// RollbackBatch returns how many old instances a rolling rollback restores
// at a time: RollbackMaximumBatchSize of the old fleet, or all of it when
// absent.
func RollbackBatch(policy *kiln.RollingUpdatePolicy, blueSize int) int {
	if policy == nil || policy.RollbackMaximumBatchSize == nil {
		return blueSize
	}
	return min(max(1, Instances(policy.RollbackMaximumBatchSize, blueSize)), blueSize)
}

// GreenKept returns how many new instances a rolling rollback keeps while
// blue old instances (of blueSize) run: the new capacity that the missing
// old capacity still needs, rounded up so that capacity never drops.
func GreenKept(blue, blueSize, greenSize int) int {
	if blueSize < 1 || blue >= blueSize {
		return 0
	}
	missing := blueSize - max(blue, 0)
	return min(greenSize, (missing*greenSize+blueSize-1)/blueSize)
}

// RollbackStep returns the next batch of a rolling rollback from blue
// running old instances and greenActive new ones: how many old instances
// run and take traffic after it, and how many new ones remain. The
// rollback is over when it returns (blueSize, 0).
func RollbackStep(policy *kiln.RollingUpdatePolicy, blueSize, greenSize, blue, greenActive int) (nextBlue, nextGreen int) {
	nextBlue = min(blueSize, max(blue, 0)+RollbackBatch(policy, blueSize))
	return nextBlue, min(max(greenActive, 0), GreenKept(nextBlue, blueSize, greenSize))
}

// half converts a canary, linear step or batch size for a fleet of n and
// checks that an INSTANCE_COUNT is at most half of the fleet.
func half(field string, s *kiln.CapacitySize, n int, fleet string) (int, error) {
	v := Instances(s, n)
	if s != nil && s.Type == kiln.InstanceCount && v > n/2 { // 2v > n, without overflow
		return 0, kiln.Errorf(kiln.EINVALID, "%s.Value is %d instance(s), more than half of the %s of %d instance(s).", field, v, fleet, n)
	}
	if v < 1 {
		return 0, kiln.Errorf(kiln.EINVALID, "%s must be at least 1 instance.", field)
	}
	return min(v, n), nil
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

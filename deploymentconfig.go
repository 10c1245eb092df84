package kiln

// DeploymentConfig says how UpdateEndpoint replaces what an endpoint runs
// (REFERENCE.md §2). At most one of the two policies; none at all means
// blue/green ALL_AT_ONCE with no bake.
type DeploymentConfig struct {
	BlueGreenUpdatePolicy     *BlueGreenUpdatePolicy     `json:"BlueGreenUpdatePolicy,omitempty"`
	RollingUpdatePolicy       *RollingUpdatePolicy       `json:"RollingUpdatePolicy,omitempty"`
	AutoRollbackConfiguration *AutoRollbackConfiguration `json:"AutoRollbackConfiguration,omitempty"`

	// MinRequestsPerBake (Kiln, beyond SageMaker) is the evidence every
	// bake needs before it may end: requests answered by the new fleets
	// since the bake began. A bake whose time is up waits for them, and
	// the update rolls back if they have not come within
	// EvidenceTimeoutInSeconds or MaximumExecutionTimeoutInSeconds. 0: a
	// bake ends on time whatever it saw (SageMaker's behaviour), unless
	// the endpoint's tag kiln:MinRequestsPerBake asks for evidence.
	MinRequestsPerBake int `json:"MinRequestsPerBake,omitempty"`
	// EvidenceTimeoutInSeconds (Kiln) bounds how long a bake whose time is
	// up waits for its MinRequestsPerBake before the update rolls back;
	// 0 means until MaximumExecutionTimeoutInSeconds.
	EvidenceTimeoutInSeconds int `json:"EvidenceTimeoutInSeconds,omitempty"`
}

// MinRequestsTag is the endpoint tag that asks every update of the endpoint
// for MinRequestsPerBake when its DeploymentConfig gives none: the way to
// ask for evidence through SageMaker's API, whose SDKs send no field
// SageMaker does not know.
const MinRequestsTag = "kiln:MinRequestsPerBake"

// MaxMinRequestsPerBake bounds MinRequestsPerBake.
const MaxMinRequestsPerBake = 1_000_000

// BlueGreenUpdatePolicy provisions a whole new (green) fleet beside the old
// (blue) one and moves traffic to it.
type BlueGreenUpdatePolicy struct {
	TrafficRoutingConfiguration      *TrafficRoutingConfig `json:"TrafficRoutingConfiguration"`
	TerminationWaitInSeconds         int                   `json:"TerminationWaitInSeconds,omitempty"`
	MaximumExecutionTimeoutInSeconds int                   `json:"MaximumExecutionTimeoutInSeconds,omitempty"`
}

// Traffic routing types.
const (
	AllAtOnce = "ALL_AT_ONCE"
	Canary    = "CANARY"
	Linear    = "LINEAR"
)

// TrafficRoutingConfig is how traffic moves from blue to green.
type TrafficRoutingConfig struct {
	Type                  string        `json:"Type"`
	WaitIntervalInSeconds int           `json:"WaitIntervalInSeconds"`
	CanarySize            *CapacitySize `json:"CanarySize,omitempty"`
	LinearStepSize        *CapacitySize `json:"LinearStepSize,omitempty"`
}

// Capacity size types.
const (
	InstanceCount   = "INSTANCE_COUNT"
	CapacityPercent = "CAPACITY_PERCENT"
)

// CapacitySize is a number of instances or a percentage of a fleet.
type CapacitySize struct {
	Type  string `json:"Type"`
	Value int    `json:"Value"`
}

// RollingUpdatePolicy replaces instances batch by batch without a second
// full fleet.
type RollingUpdatePolicy struct {
	MaximumBatchSize                 *CapacitySize `json:"MaximumBatchSize"`
	WaitIntervalInSeconds            int           `json:"WaitIntervalInSeconds"`
	MaximumExecutionTimeoutInSeconds int           `json:"MaximumExecutionTimeoutInSeconds,omitempty"`
	RollbackMaximumBatchSize         *CapacitySize `json:"RollbackMaximumBatchSize,omitempty"`
}

// AutoRollbackConfiguration lists the alarms watched during every bake.
type AutoRollbackConfiguration struct {
	Alarms []AlarmRef `json:"Alarms"`
}

// AlarmRef names an alarm.
type AlarmRef struct {
	AlarmName string `json:"AlarmName"`
}

// Limits of deployment configs (REFERENCE.md §2).
const (
	MaxWaitIntervalSeconds    = 3600
	MinExecutionTimeoutSecond = 600
	MaxExecutionTimeoutSecond = 28800
	// DefaultExecutionTimeoutSeconds applies when MaximumExecutionTimeoutInSeconds
	// is not given (Kiln rule: AWS does not document one).
	DefaultExecutionTimeoutSeconds = 28800
)

// AlarmNames returns the names of the rollback alarms, if any.
func (d *DeploymentConfig) AlarmNames() []string {
	if d == nil || d.AutoRollbackConfiguration == nil {
		return nil
	}
	names := make([]string, 0, len(d.AutoRollbackConfiguration.Alarms))
	for _, a := range d.AutoRollbackConfiguration.Alarms {
		names = append(names, a.AlarmName)
	}
	return names
}

// ExecutionTimeout returns the deployment's time limit in seconds.
func (d *DeploymentConfig) ExecutionTimeout() int {
	t := 0
	switch {
	case d == nil:
	case d.BlueGreenUpdatePolicy != nil:
		t = d.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds
	case d.RollingUpdatePolicy != nil:
		t = d.RollingUpdatePolicy.MaximumExecutionTimeoutInSeconds
	}
	if t == 0 {
		return DefaultExecutionTimeoutSeconds
	}
	return t
}

// EvidenceTimeout returns EvidenceTimeoutInSeconds, 0 for none.
func (d *DeploymentConfig) EvidenceTimeout() int {
	if d == nil {
		return 0
	}
	return d.EvidenceTimeoutInSeconds
}

// Validate checks the config's own limits. Limits that depend on the fleet
// (an INSTANCE_COUNT canary larger than half the fleet) are checked when the
// plan is made, and alarm names against the alarms that exist by the caller.
func (d *DeploymentConfig) Validate() error {
	if d == nil {
		return nil
	}
	if d.BlueGreenUpdatePolicy != nil && d.RollingUpdatePolicy != nil {
		return Errorf(EINVALID, "DeploymentConfig: specify either BlueGreenUpdatePolicy or RollingUpdatePolicy, not both.")
	}
	if bg := d.BlueGreenUpdatePolicy; bg != nil {
		if err := bg.validate(); err != nil {
			return err
		}
	}
	if ru := d.RollingUpdatePolicy; ru != nil {
		if err := ru.validate(); err != nil {
			return err
		}
	}
	if d.MinRequestsPerBake < 0 || d.MinRequestsPerBake > MaxMinRequestsPerBake {
		return Errorf(EINVALID, "DeploymentConfig.MinRequestsPerBake must be between 0 and %d, got %d.", MaxMinRequestsPerBake, d.MinRequestsPerBake)
	}
	if d.EvidenceTimeoutInSeconds < 0 || d.EvidenceTimeoutInSeconds > MaxExecutionTimeoutSecond {
		return Errorf(EINVALID, "DeploymentConfig.EvidenceTimeoutInSeconds must be between 0 and %d seconds, got %d.", MaxExecutionTimeoutSecond, d.EvidenceTimeoutInSeconds)
	}
	if d.EvidenceTimeoutInSeconds > 0 && d.MinRequestsPerBake == 0 {
		return Errorf(EINVALID, "DeploymentConfig.EvidenceTimeoutInSeconds applies only with MinRequestsPerBake.")
	}
	if ar := d.AutoRollbackConfiguration; ar != nil {
		if n := len(ar.Alarms); n < 1 || n > MaxRollbackAlarms {
			return Errorf(EINVALID, "AutoRollbackConfiguration.Alarms must have between 1 and %d entries, got %d.", MaxRollbackAlarms, n)
		}
		seen := map[string]bool{}
		for i, a := range ar.Alarms {
			if a.AlarmName == "" || len(a.AlarmName) > MaxAlarmNameLength {
				return Errorf(EINVALID, "AutoRollbackConfiguration.Alarms[%d].AlarmName must be 1 to %d characters.", i, MaxAlarmNameLength)
			}
			if seen[a.AlarmName] {
				return Errorf(EINVALID, "AutoRollbackConfiguration.Alarms names %q more than once.", a.AlarmName)
			}
			seen[a.AlarmName] = true
		}
	}
	return nil
}

func (bg *BlueGreenUpdatePolicy) validate() error {
	const p = "DeploymentConfig.BlueGreenUpdatePolicy"
	tr := bg.TrafficRoutingConfiguration
	if tr == nil {
		return Errorf(EINVALID, "%s.TrafficRoutingConfiguration is required.", p)
	}
	if err := checkWait(p+".TrafficRoutingConfiguration.WaitIntervalInSeconds", tr.WaitIntervalInSeconds); err != nil {
		return err
	}
	switch tr.Type {
	case AllAtOnce:
		if tr.CanarySize != nil || tr.LinearStepSize != nil {
			return Errorf(EINVALID, "%s.TrafficRoutingConfiguration: CanarySize and LinearStepSize do not apply to ALL_AT_ONCE.", p)
		}
	case Canary:
		if tr.LinearStepSize != nil {
			return Errorf(EINVALID, "%s.TrafficRoutingConfiguration: LinearStepSize does not apply to CANARY.", p)
		}
		if err := checkSize(p+".TrafficRoutingConfiguration.CanarySize", tr.CanarySize, 1, 50); err != nil {
			return err
		}
	case Linear:
		if tr.CanarySize != nil {
			return Errorf(EINVALID, "%s.TrafficRoutingConfiguration: CanarySize does not apply to LINEAR.", p)
		}
		if err := checkSize(p+".TrafficRoutingConfiguration.LinearStepSize", tr.LinearStepSize, 10, 50); err != nil {
			return err
		}
	case "":
		return Errorf(EINVALID, "%s.TrafficRoutingConfiguration.Type is required: ALL_AT_ONCE, CANARY or LINEAR.", p)
	default:
		return Errorf(EINVALID, "%s.TrafficRoutingConfiguration.Type %q is not one of ALL_AT_ONCE, CANARY, LINEAR.", p, tr.Type)
	}
	if err := checkWait(p+".TerminationWaitInSeconds", bg.TerminationWaitInSeconds); err != nil {
		return err
	}
	return checkTimeout(p+".MaximumExecutionTimeoutInSeconds", bg.MaximumExecutionTimeoutInSeconds)
}

func (ru *RollingUpdatePolicy) validate() error {
	const p = "DeploymentConfig.RollingUpdatePolicy"
	if err := checkSize(p+".MaximumBatchSize", ru.MaximumBatchSize, 5, 50); err != nil {
		return err
	}
	if err := checkWait(p+".WaitIntervalInSeconds", ru.WaitIntervalInSeconds); err != nil {
		return err
	}
	if err := checkTimeout(p+".MaximumExecutionTimeoutInSeconds", ru.MaximumExecutionTimeoutInSeconds); err != nil {
		return err
	}
	if ru.RollbackMaximumBatchSize != nil {
		return checkSize(p+".RollbackMaximumBatchSize", ru.RollbackMaximumBatchSize, 1, 100)
	}
	return nil
}

func checkWait(field string, v int) error {
	if v < 0 || v > MaxWaitIntervalSeconds {
		return Errorf(EINVALID, "%s must be between 0 and %d seconds, got %d.", field, MaxWaitIntervalSeconds, v)
	}
	return nil
}

func checkTimeout(field string, v int) error {
	if v != 0 && (v < MinExecutionTimeoutSecond || v > MaxExecutionTimeoutSecond) {
		return Errorf(EINVALID, "%s must be between %d and %d seconds, got %d.", field, MinExecutionTimeoutSecond, MaxExecutionTimeoutSecond, v)
	}
	return nil
}

// checkSize checks a CapacitySize; a CAPACITY_PERCENT must lie in [minPct, maxPct].
func checkSize(field string, s *CapacitySize, minPct, maxPct int) error {
	if s == nil {
		return Errorf(EINVALID, "%s is required.", field)
	}
	switch s.Type {
	case InstanceCount:
		if s.Value < 1 || s.Value > MaxInstancesPerVariant {
			return Errorf(EINVALID, "%s.Value must be from 1 to %d instances, got %d.", field, MaxInstancesPerVariant, s.Value)
		}
	case CapacityPercent:
		if s.Value < minPct || s.Value > maxPct {
			return Errorf(EINVALID, "%s.Value must be between %d and %d percent, got %d.", field, minPct, maxPct, s.Value)
		}
	case "":
		return Errorf(EINVALID, "%s.Type is required: INSTANCE_COUNT or CAPACITY_PERCENT.", field)
	default:
		return Errorf(EINVALID, "%s.Type %q is not one of INSTANCE_COUNT, CAPACITY_PERCENT.", field, s.Type)
	}
	return nil
}

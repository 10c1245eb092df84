package kiln

import "time"

// Deployment kinds.
const (
	DeployCreate    = "Create"    // the first fleets of a new endpoint
	DeployBlueGreen = "BlueGreen" // a second fleet, then traffic moves
	DeployRolling   = "Rolling"   // batches of instances replaced in place
	DeployWeights   = "Weights"   // UpdateEndpointWeightsAndCapacities
)

// Deployment phases: where a deployment is within its current step.
const (
	// PhaseProvisioning: instances are launching, or the deployment waits
	// for them to pass their health checks before traffic moves.
	PhaseProvisioning = "Provisioning"
	// PhaseActivatingTraffic: the step's traffic shares have been written.
	PhaseActivatingTraffic = "ActivatingTraffic"
	// PhaseBaking: traffic is in place and the rollback alarms are watched
	// until the bake ends (PhaseStartTime plus the bake).
	PhaseBaking = "Baking"
	// PhaseRetiring: a rolling update retires a batch of old instances.
	PhaseRetiring = "Retiring"
	// PhaseTerminating: the old fleets are being removed; the update can no
	// longer roll back.
	PhaseTerminating = "Terminating"
	// PhaseRollingBack: traffic is going back to the old fleets and the new
	// ones are being removed. RollbackReason says why.
	PhaseRollingBack = "RollingBack"
)

// Phases of the history events that end a deployment.
const (
	PhaseCompleted      = "Completed"      // the endpoint runs the new config
	PhaseRolledBack     = "RolledBack"     // the endpoint runs the old config again
	PhaseFailed         = "Failed"         // the endpoint could not be created
	PhaseRollbackFailed = "RollbackFailed" // the update and its rollback both failed
)

// Rollback causes: why a deployment rolled back (Deployment.RollbackCause,
// HistoryEvent.Cause), so that a program can tell outcomes apart without
// reading the reason's words.
const (
	CauseAlarm        = "Alarm"        // a rollback alarm (a judge included) was in ALARM
	CauseOperator     = "Operator"     // an operator stopped the update or rolled it back
	CauseTimeout      = "Timeout"      // MaximumExecutionTimeoutInSeconds passed
	CauseLaunchFailed = "LaunchFailed" // new instances could not launch
	CauseNoEvidence   = "NoEvidence"   // a bake's MinRequestsPerBake did not come in time
)

// Deployment is the durable state of an update in progress. The controller
// writes it before acting on it, so a restarted controller carries on.
type Deployment struct {
	ID                 string            `json:"ID"`
	Kind               string            `json:"Kind"`
	EndpointConfigName string            `json:"EndpointConfigName"`
	DeploymentConfig   *DeploymentConfig `json:"DeploymentConfig,omitempty"`
	StartTime          time.Time         `json:"StartTime"`
	// Phase and Step say where the deployment is; PhaseStartTime when it got
	// there, so a bake is a deadline computed from state, never a sleep.
	Phase          string    `json:"Phase"`
	Step           int       `json:"Step"`
	PhaseStartTime time.Time `json:"PhaseStartTime"`
	// Blue and Green are fleet IDs: what ran before, and what replaces it.
	Blue  []string `json:"Blue,omitempty"`
	Green []string `json:"Green,omitempty"`
	// RollbackReason is set once the deployment is to roll back, by the
	// controller or, with the operator's reason, by a stop; the controller
	// starts the rollback at its next look. It becomes FailureReason.
	RollbackReason string `json:"RollbackReason,omitempty"`
	// StopRequested is set by an operator's stop; the controller rolls back.
	StopRequested bool `json:"StopRequested,omitempty"`
	// RollbackCause says what RollbackReason says, for programs: one of the
	// Cause constants, set with RollbackReason.
	RollbackCause string `json:"RollbackCause,omitempty"`
	// Target holds the variants the endpoint will show once done.
	Target []VariantSummary `json:"Target,omitempty"`
	// Previous holds the variants as they were when the deployment started:
	// what a rollback restores (weights, instance counts, images).
	Previous []VariantSummary `json:"Previous,omitempty"`
	// MinRequestsPerBake is the evidence each bake needs before it ends:
	// requests answered by the new fleets since the bake began, from the
	// DeploymentConfig or the endpoint's kiln:MinRequestsPerBake tag when
	// the update started. 0: none.
	MinRequestsPerBake int `json:"MinRequestsPerBake,omitempty"`
	// BlindBakes lists the steps whose bake ended without a single request
	// answered by the new fleets: their alarms watched no traffic.
	BlindBakes []int `json:"BlindBakes,omitempty"`
}

// HistoryEvent is one transition of an endpoint's deployments, kept durably.
type HistoryEvent struct {
	Time         time.Time `json:"Time"`
	DeploymentID string    `json:"DeploymentID,omitempty"`
	Phase        string    `json:"Phase"`
	Step         int       `json:"Step,omitempty"`
	Message      string    `json:"Message"`
	// GreenShare is the share of traffic on the new fleets after the event.
	GreenShare float64 `json:"GreenShare"`
	// Cause is the deployment's RollbackCause once it is rolling back: on
	// the RolledBack event, why the update did not happen.
	Cause string `json:"Cause,omitempty"`
}

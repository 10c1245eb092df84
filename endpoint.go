package kiln

import "time"

// Endpoint statuses, as SageMaker names them.
const (
	StatusOutOfService         = "OutOfService"
	StatusCreating             = "Creating"
	StatusUpdating             = "Updating"
	StatusSystemUpdating       = "SystemUpdating"
	StatusRollingBack          = "RollingBack"
	StatusInService            = "InService"
	StatusDeleting             = "Deleting"
	StatusFailed               = "Failed"
	StatusUpdateRollbackFailed = "UpdateRollbackFailed"
)

// Variant statuses shown in DescribeEndpoint.
const (
	VariantCreating          = "Creating"
	VariantUpdating          = "Updating"
	VariantDeleting          = "Deleting"
	VariantActivatingTraffic = "ActivatingTraffic"
	VariantBaking            = "Baking"
)

// Endpoint is the durable record of one endpoint: what clients see through
// DescribeEndpoint, and the routing state the controller writes and the
// fleet manager and gateway follow.
type Endpoint struct {
	EndpointName         string            `json:"EndpointName"`
	EndpointArn          string            `json:"EndpointArn"`
	EndpointConfigName   string            `json:"EndpointConfigName"`
	EndpointStatus       string            `json:"EndpointStatus"`
	FailureReason        string            `json:"FailureReason,omitempty"`
	CreationTime         time.Time         `json:"CreationTime"`
	LastModifiedTime     time.Time         `json:"LastModifiedTime"`
	ProductionVariants   []VariantSummary  `json:"ProductionVariants,omitempty"`
	LastDeploymentConfig *DeploymentConfig `json:"LastDeploymentConfig,omitempty"`
	Tags                 []Tag             `json:"Tags,omitempty"`
	// EvidenceWarning (Kiln) is set when the last update completed although
	// its new fleets answered no request during some of its bakes: the
	// alarms that let it through watched no traffic. The next update that
	// completes with evidence in every bake clears it.
	EvidenceWarning string `json:"EvidenceWarning,omitempty"`

	// Fleets are the groups of instances the endpoint runs now, with the
	// share of traffic each gets. During a blue/green deployment a variant
	// has two: blue (the live config) and green (the new one).
	Fleets []Fleet `json:"Fleets,omitempty"`
	// Deployment is the update in progress, if any (including the initial
	// creation of the endpoint's fleets).
	Deployment *Deployment `json:"Deployment,omitempty"`
	// NextFleetSerial numbers fleets so that every fleet ID is new.
	NextFleetSerial int `json:"NextFleetSerial,omitempty"`
}

// VariantSummary is a variant as DescribeEndpoint shows it.
type VariantSummary struct {
	VariantName          string          `json:"VariantName"`
	DeployedImages       []DeployedImage `json:"DeployedImages,omitempty"`
	CurrentWeight        float64         `json:"CurrentWeight"`
	DesiredWeight        float64         `json:"DesiredWeight"`
	CurrentInstanceCount int             `json:"CurrentInstanceCount"`
	DesiredInstanceCount int             `json:"DesiredInstanceCount"`
	VariantStatus        []VariantStatus `json:"VariantStatus,omitempty"`
}

// DeployedImage is the image (for Kiln, the command line) a variant runs.
type DeployedImage struct {
	SpecifiedImage string    `json:"SpecifiedImage"`
	ResolvedImage  string    `json:"ResolvedImage"`
	ResolutionTime time.Time `json:"ResolutionTime"`
}

// VariantStatus describes what is happening to a variant now.
type VariantStatus struct {
	Status        string    `json:"Status"`
	StatusMessage string    `json:"StatusMessage,omitempty"`
	StartTime     time.Time `json:"StartTime"`
}

// Fleet is a group of identical instances of one variant of one endpoint
// config. Instances are numbered 0..InstanceCount-1; the first
// ActiveInstanceCount of them take traffic.
type Fleet struct {
	// ID is unique within the endpoint and never reused.
	ID                 string       `json:"ID"`
	VariantName        string       `json:"VariantName"`
	EndpointConfigName string       `json:"EndpointConfigName"`
	ModelName          string       `json:"ModelName"`
	InstanceType       string       `json:"InstanceType,omitempty"`
	Container          ContainerDef `json:"Container"`
	// InstanceCount is how many instances should run.
	InstanceCount int `json:"InstanceCount"`
	// ActiveInstanceCount is how many of them (the lowest-numbered) receive
	// traffic; a canary activates part of a provisioned fleet.
	ActiveInstanceCount int `json:"ActiveInstanceCount"`
	// TrafficShare is the fleet's share of its variant's traffic, from 0 to
	// 1; the shares of a variant's fleets add up to 1.
	TrafficShare float64 `json:"TrafficShare"`
}

// Live reports whether the endpoint can take a new update.
func (e *Endpoint) Live() bool {
	return e.EndpointStatus == StatusInService && e.Deployment == nil
}

// FleetsOf returns the endpoint's fleets of one variant.
func (e *Endpoint) FleetsOf(variant string) []Fleet {
	var out []Fleet
	for _, f := range e.Fleets {
		if f.VariantName == variant {
			out = append(out, f)
		}
	}
	return out
}

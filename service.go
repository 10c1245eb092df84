package kiln

import (
	"context"
	"time"
)

// Service is Kiln's control plane: every API (native, SageMaker, CloudWatch)
// is an encoding of these calls, so the rules live in one place.
type Service interface {
	CreateModel(ctx context.Context, m *Model) (*Model, error)
	GetModel(ctx context.Context, name string) (*Model, error)
	ListModels(ctx context.Context) ([]Model, error)
	DeleteModel(ctx context.Context, name string) error

	CreateEndpointConfig(ctx context.Context, c *EndpointConfig) (*EndpointConfig, error)
	GetEndpointConfig(ctx context.Context, name string) (*EndpointConfig, error)
	ListEndpointConfigs(ctx context.Context) ([]EndpointConfig, error)
	DeleteEndpointConfig(ctx context.Context, name string) error

	CreateEndpoint(ctx context.Context, in CreateEndpointInput) (*Endpoint, error)
	GetEndpoint(ctx context.Context, name string) (*Endpoint, error)
	ListEndpoints(ctx context.Context) ([]Endpoint, error)
	DeleteEndpoint(ctx context.Context, name string) error
	UpdateEndpoint(ctx context.Context, in UpdateEndpointInput) (*Endpoint, error)
	UpdateEndpointWeightsAndCapacities(ctx context.Context, in UpdateWeightsInput) (*Endpoint, error)
	// StopDeployment stops the update in progress, which rolls it back.
	StopDeployment(ctx context.Context, name string) (*Endpoint, error)
	// RollbackEndpoint rolls back the update in progress.
	RollbackEndpoint(ctx context.Context, name string) (*Endpoint, error)
	EndpointHistory(ctx context.Context, name string) ([]HistoryEvent, error)
	EndpointLogs(ctx context.Context, name string, tailBytes int) (string, error)
	EndpointInstances(ctx context.Context, name string) ([]InstanceInfo, error)

	PutAlarm(ctx context.Context, a *Alarm) (*Alarm, error)
	GetAlarm(ctx context.Context, name string) (*Alarm, error)
	ListAlarms(ctx context.Context) ([]Alarm, error)
	DeleteAlarms(ctx context.Context, names []string) error
	SetAlarmState(ctx context.Context, name, state, reason, reasonData string) error
	// AlarmHistory returns an alarm's history, or every alarm's for "".
	AlarmHistory(ctx context.Context, name string) ([]AlarmHistoryItem, error)

	// ListTags, AddTags and DeleteTags read and change the tags of the
	// model, endpoint config, endpoint or alarm an ARN names (ParseARN).
	// AddTags returns the resource's tags after the change.
	ListTags(ctx context.Context, arn string) ([]Tag, error)
	AddTags(ctx context.Context, arn string, tags []Tag) ([]Tag, error)
	DeleteTags(ctx context.Context, arn string, keys []string) error

	// PutMetricData records data points of a metric a client publishes,
	// in any namespace but AWS/'s (ValidateMetricData).
	PutMetricData(ctx context.Context, namespace string, data []MetricDatum) error
	GetMetricStatistics(ctx context.Context, q MetricQuery) ([]Datapoint, error)
	ListMetrics(ctx context.Context, namespace, metricName string, dims []Dimension) ([]Metric, error)
}

// MetricQuery asks for one statistic of one metric, period by period.
type MetricQuery struct {
	Namespace  string      `json:"Namespace"`
	MetricName string      `json:"MetricName"`
	Dimensions []Dimension `json:"Dimensions,omitempty"`
	// Statistic is SampleCount, Sum, Average, Minimum, Maximum or a
	// percentile such as p99.
	Statistic string    `json:"Statistic"`
	Period    int       `json:"Period"` // seconds
	StartTime time.Time `json:"StartTime"`
	EndTime   time.Time `json:"EndTime"`
}

// Datapoint is a statistic over one period.
type Datapoint struct {
	Timestamp   time.Time `json:"Timestamp"`
	Value       float64   `json:"Value"`
	SampleCount float64   `json:"SampleCount"`
}

// Metric names a metric with data.
type Metric struct {
	Namespace  string      `json:"Namespace"`
	MetricName string      `json:"MetricName"`
	Dimensions []Dimension `json:"Dimensions"`
}

// CreateEndpointInput is CreateEndpoint's request.
type CreateEndpointInput struct {
	EndpointName       string            `json:"EndpointName"`
	EndpointConfigName string            `json:"EndpointConfigName"`
	DeploymentConfig   *DeploymentConfig `json:"DeploymentConfig,omitempty"`
	Tags               []Tag             `json:"Tags,omitempty"`
}

// UpdateEndpointInput is UpdateEndpoint's request.
type UpdateEndpointInput struct {
	EndpointName                     string            `json:"EndpointName"`
	EndpointConfigName               string            `json:"EndpointConfigName"`
	DeploymentConfig                 *DeploymentConfig `json:"DeploymentConfig,omitempty"`
	RetainAllVariantProperties       bool              `json:"RetainAllVariantProperties,omitempty"`
	ExcludeRetainedVariantProperties []VariantProperty `json:"ExcludeRetainedVariantProperties,omitempty"`
	RetainDeploymentConfig           bool              `json:"RetainDeploymentConfig,omitempty"`
}

// VariantProperty names a property excluded from RetainAllVariantProperties.
type VariantProperty struct {
	VariantPropertyType string `json:"VariantPropertyType"` // DesiredInstanceCount | DesiredWeight | DataCaptureConfig
}

// UpdateWeightsInput is UpdateEndpointWeightsAndCapacities' request.
type UpdateWeightsInput struct {
	EndpointName                string                     `json:"EndpointName"`
	DesiredWeightsAndCapacities []DesiredWeightAndCapacity `json:"DesiredWeightsAndCapacities"`
}

// DesiredWeightAndCapacity changes one variant's weight or instance count.
type DesiredWeightAndCapacity struct {
	VariantName          string   `json:"VariantName"`
	DesiredWeight        *float64 `json:"DesiredWeight,omitempty"`
	DesiredInstanceCount *int     `json:"DesiredInstanceCount,omitempty"`
}

// InstanceInfo is one running instance as the API shows it.
type InstanceInfo struct {
	ID                 string    `json:"ID"`
	FleetID            string    `json:"FleetID"`
	VariantName        string    `json:"VariantName"`
	EndpointConfigName string    `json:"EndpointConfigName"`
	Ordinal            int       `json:"Ordinal"`
	Addr               string    `json:"Addr"`
	PID                int       `json:"PID"`
	State              string    `json:"State"`
	Routable           bool      `json:"Routable"`
	Restarts           int       `json:"Restarts"`
	StartedAt          time.Time `json:"StartedAt"`
	LastError          string    `json:"LastError,omitempty"`
}

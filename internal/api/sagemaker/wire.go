package sagemaker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/kiln-serve/kiln"
)

// The SageMaker wire shapes. Requests list every member of SageMaker's API
// model for the operation, so that a field SageMaker has and Kiln does not
// support gets an error that says so, a field that changes nothing on Kiln
// is accepted and ignored, and a field SageMaker does not have at all is
// refused as unknown. Members Kiln refuses are json.RawMessage; members it
// ignores keep their wire type so that a wrong type is still reported.

// epochTime is a timestamp on the awsJson wire: seconds since the Unix epoch
// as a JSON number, with a fraction for sub-second precision.
type epochTime time.Time

func newEpoch(t time.Time) *epochTime {
	if t.IsZero() {
		return nil
	}
	e := epochTime(t)
	return &e
}

func (t epochTime) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// maxEpochSeconds keeps decoded times inside what time.Time represents
// exactly (the year 5138), so that nonsense fails instead of wrapping.
const maxEpochSeconds = 1e11

func (t *epochTime) UnmarshalJSON(b []byte) error {
	var f float64
	if len(b) > 0 && b[0] == '"' {
		// SageMaker takes only numbers, but a date string is unambiguous
		// and some hand-written clients send one.
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if tt, err := time.Parse(time.RFC3339Nano, s); err == nil {
			*t = epochTime(tt)
			return nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("timestamp %q is neither epoch seconds nor an RFC 3339 date", s)
		}
		f = v
	} else if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("a timestamp must be a number of seconds since the epoch")
	}
	if math.IsNaN(f) || math.Abs(f) > maxEpochSeconds {
		return fmt.Errorf("timestamp %v is out of range", f)
	}
	sec, frac := math.Modf(f)
	*t = epochTime(time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC())
	return nil
}

func (t *epochTime) time() time.Time {
	if t == nil {
		return time.Time{}
	}
	return time.Time(*t)
}

// ignoredObject is a structure member Kiln accepts and ignores; it still
// must be a JSON object.
type ignoredObject struct{}

func (*ignoredObject) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) == 0 || b[0] != '{' {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: objectType}
	}
	return nil
}

func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "value"
	}
	switch b[0] {
	case '"':
		return "string"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// isSet reports whether a refused member was given a value (null is none).
func isSet(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && string(raw) != "null"
}

// ---- requests

type createModelRequest struct {
	ModelName                string               `json:"ModelName"`
	PrimaryContainer         *containerDefinition `json:"PrimaryContainer"`
	Containers               json.RawMessage      `json:"Containers"`
	InferenceExecutionConfig json.RawMessage      `json:"InferenceExecutionConfig"`
	ExecutionRoleArn         string               `json:"ExecutionRoleArn"`
	Tags                     []kiln.Tag           `json:"Tags"`
	VpcConfig                json.RawMessage      `json:"VpcConfig"`
	EnableNetworkIsolation   *bool                `json:"EnableNetworkIsolation"`
}

type containerDefinition struct {
	ContainerHostname          *string           `json:"ContainerHostname"` // ignored
	Image                      string            `json:"Image"`
	ImageConfig                *ignoredObject    `json:"ImageConfig"` // ignored: no registry
	Mode                       string            `json:"Mode"`
	ModelDataUrl               string            `json:"ModelDataUrl"`
	ModelDataSource            json.RawMessage   `json:"ModelDataSource"`
	AdditionalModelDataSources json.RawMessage   `json:"AdditionalModelDataSources"`
	Environment                map[string]string `json:"Environment"`
	ModelPackageName           json.RawMessage   `json:"ModelPackageName"`
	InferenceSpecificationName json.RawMessage   `json:"InferenceSpecificationName"`
	MultiModelConfig           json.RawMessage   `json:"MultiModelConfig"`
}

func (r *createModelRequest) model() (*kiln.Model, error) {
	switch {
	case isSet(r.Containers):
		return nil, unsupported("Containers", "inference pipelines of several containers are not supported; give the model's command line as PrimaryContainer.Image")
	case isSet(r.InferenceExecutionConfig):
		return nil, unsupported("InferenceExecutionConfig", "it applies to multi-container models only")
	case isSet(r.VpcConfig):
		return nil, unsupported("VpcConfig", "instances run as processes on the Kiln host, not in a VPC")
	case r.EnableNetworkIsolation != nil && *r.EnableNetworkIsolation:
		return nil, unsupported("EnableNetworkIsolation=true", "instances run as processes on the Kiln host and share its network")
	}
	m := &kiln.Model{ModelName: r.ModelName, ExecutionRoleArn: r.ExecutionRoleArn, Tags: r.Tags}
	if c := r.PrimaryContainer; c != nil {
		switch {
		case isSet(c.ModelDataSource):
			return nil, unsupported("PrimaryContainer.ModelDataSource", "use PrimaryContainer.ModelDataUrl, which reaches the model as KILN_MODEL_DATA_URL")
		case isSet(c.AdditionalModelDataSources):
			return nil, unsupported("PrimaryContainer.AdditionalModelDataSources", "use PrimaryContainer.ModelDataUrl or Environment")
		case isSet(c.ModelPackageName):
			return nil, unsupported("PrimaryContainer.ModelPackageName", "there is no model registry; give PrimaryContainer.Image")
		case isSet(c.InferenceSpecificationName):
			return nil, unsupported("PrimaryContainer.InferenceSpecificationName", "there is no model registry")
		case isSet(c.MultiModelConfig):
			return nil, unsupported("PrimaryContainer.MultiModelConfig", "multi-model endpoints are not supported")
		case c.Mode != "" && c.Mode != "SingleModel":
			return nil, unsupported("PrimaryContainer.Mode="+c.Mode, "only SingleModel is supported")
		}
		m.PrimaryContainer = &kiln.ContainerDef{Image: c.Image, Environment: c.Environment, ModelDataUrl: c.ModelDataUrl}
	}
	return m, nil
}

type createEndpointConfigRequest struct {
	EndpointConfigName       string                `json:"EndpointConfigName"`
	ProductionVariants       []productionVariantIn `json:"ProductionVariants"`
	DataCaptureConfig        json.RawMessage       `json:"DataCaptureConfig"`
	Tags                     []kiln.Tag            `json:"Tags"`
	KmsKeyId                 json.RawMessage       `json:"KmsKeyId"`
	AsyncInferenceConfig     json.RawMessage       `json:"AsyncInferenceConfig"`
	ExplainerConfig          json.RawMessage       `json:"ExplainerConfig"`
	ShadowProductionVariants json.RawMessage       `json:"ShadowProductionVariants"`
	ExecutionRoleArn         *string               `json:"ExecutionRoleArn"` // ignored: no AWS resources to reach
	VpcConfig                json.RawMessage       `json:"VpcConfig"`
	EnableNetworkIsolation   *bool                 `json:"EnableNetworkIsolation"`
	MetricsConfig            *ignoredObject        `json:"MetricsConfig"` // ignored: Kiln publishes every second anyway
}

type productionVariantIn struct {
	VariantName                              string          `json:"VariantName"`
	ModelName                                string          `json:"ModelName"`
	InitialInstanceCount                     *int            `json:"InitialInstanceCount"`
	InstanceType                             string          `json:"InstanceType"`
	InstancePools                            json.RawMessage `json:"InstancePools"`
	VariantInstanceProvisionTimeoutInSeconds *int            `json:"VariantInstanceProvisionTimeoutInSeconds"` // ignored
	InitialVariantWeight                     *float64        `json:"InitialVariantWeight"`
	AcceleratorType                          json.RawMessage `json:"AcceleratorType"`
	CoreDumpConfig                           *ignoredObject  `json:"CoreDumpConfig"` // ignored
	ServerlessConfig                         json.RawMessage `json:"ServerlessConfig"`
	VolumeSizeInGB                           *int            `json:"VolumeSizeInGB"`                    // ignored: no volume
	ModelDataDownloadTimeoutInSeconds        *int            `json:"ModelDataDownloadTimeoutInSeconds"` // ignored: nothing is downloaded
	// ContainerStartupHealthCheckTimeoutInSeconds is refused: Kiln bounds
	// the startup of every instance with kiln serve --startup-timeout.
	ContainerStartupHealthCheckTimeoutInSeconds json.RawMessage `json:"ContainerStartupHealthCheckTimeoutInSeconds"`
	EnableSSMAccess                             *bool           `json:"EnableSSMAccess"` // ignored
	ManagedInstanceScaling                      json.RawMessage `json:"ManagedInstanceScaling"`
	RoutingConfig                               *struct {
		RoutingStrategy string `json:"RoutingStrategy"`
	} `json:"RoutingConfig"`
	InferenceAmiVersion       *string        `json:"InferenceAmiVersion"`       // ignored
	CapacityReservationConfig *ignoredObject `json:"CapacityReservationConfig"` // ignored
}

func (r *createEndpointConfigRequest) config() (*kiln.EndpointConfig, error) {
	switch {
	case isSet(r.DataCaptureConfig):
		return nil, unsupported("DataCaptureConfig", "requests and responses are not captured")
	case isSet(r.KmsKeyId):
		return nil, unsupported("KmsKeyId", "instances run as processes on the Kiln host with no volume to encrypt")
	case isSet(r.AsyncInferenceConfig):
		return nil, unsupported("AsyncInferenceConfig", "endpoints are real-time only")
	case isSet(r.ExplainerConfig):
		return nil, unsupported("ExplainerConfig", "SageMaker Clarify explanations are not available")
	case isSet(r.ShadowProductionVariants):
		return nil, unsupported("ShadowProductionVariants", "shadow testing is not supported")
	case isSet(r.VpcConfig):
		return nil, unsupported("VpcConfig", "instances run as processes on the Kiln host, not in a VPC")
	case r.EnableNetworkIsolation != nil && *r.EnableNetworkIsolation:
		return nil, unsupported("EnableNetworkIsolation=true", "instances run as processes on the Kiln host and share its network")
	}
	c := &kiln.EndpointConfig{EndpointConfigName: r.EndpointConfigName, Tags: r.Tags}
	for i, v := range r.ProductionVariants {
		field := func(name string) string { return fmt.Sprintf("ProductionVariants[%d].%s", i, name) }
		switch {
		case isSet(v.InstancePools):
			return nil, unsupported(field("InstancePools"), "give one InstanceType")
		case isSet(v.AcceleratorType):
			return nil, unsupported(field("AcceleratorType"), "there are no Elastic Inference accelerators")
		case isSet(v.ServerlessConfig):
			return nil, unsupported(field("ServerlessConfig"), "serverless inference is not supported; give InitialInstanceCount")
		case isSet(v.ContainerStartupHealthCheckTimeoutInSeconds):
			return nil, unsupported(field("ContainerStartupHealthCheckTimeoutInSeconds"), "the startup timeout of every instance is set by kiln serve --startup-timeout")
		case isSet(v.ManagedInstanceScaling):
			return nil, unsupported(field("ManagedInstanceScaling"), "instance counts change with UpdateEndpointWeightsAndCapacities")
		case v.RoutingConfig != nil && v.RoutingConfig.RoutingStrategy != "LEAST_OUTSTANDING_REQUESTS":
			return nil, unsupported(field("RoutingConfig.RoutingStrategy="+v.RoutingConfig.RoutingStrategy), "Kiln always routes to the instance with the fewest outstanding requests (LEAST_OUTSTANDING_REQUESTS)")
		}
		pv := kiln.ProductionVariant{
			VariantName:          v.VariantName,
			ModelName:            v.ModelName,
			InstanceType:         v.InstanceType,
			InitialVariantWeight: v.InitialVariantWeight,
		}
		if v.InitialInstanceCount != nil {
			pv.InitialInstanceCount = *v.InitialInstanceCount
		}
		c.ProductionVariants = append(c.ProductionVariants, pv)
	}
	return c, nil
}

type updateWeightsRequest struct {
	EndpointName                string `json:"EndpointName"`
	DesiredWeightsAndCapacities []struct {
		VariantName            string          `json:"VariantName"`
		DesiredWeight          *float64        `json:"DesiredWeight"`
		DesiredInstanceCount   *int            `json:"DesiredInstanceCount"`
		ServerlessUpdateConfig json.RawMessage `json:"ServerlessUpdateConfig"`
	} `json:"DesiredWeightsAndCapacities"`
}

func (r *updateWeightsRequest) input() (kiln.UpdateWeightsInput, error) {
	in := kiln.UpdateWeightsInput{EndpointName: r.EndpointName}
	for i, d := range r.DesiredWeightsAndCapacities {
		if isSet(d.ServerlessUpdateConfig) {
			return in, unsupported(fmt.Sprintf("DesiredWeightsAndCapacities[%d].ServerlessUpdateConfig", i), "serverless inference is not supported")
		}
		in.DesiredWeightsAndCapacities = append(in.DesiredWeightsAndCapacities, kiln.DesiredWeightAndCapacity{
			VariantName: d.VariantName, DesiredWeight: d.DesiredWeight, DesiredInstanceCount: d.DesiredInstanceCount,
		})
	}
	return in, nil
}

type modelNameRequest struct {
	ModelName string `json:"ModelName"`
}

type endpointConfigNameRequest struct {
	EndpointConfigName string `json:"EndpointConfigName"`
}

type endpointNameRequest struct {
	EndpointName string `json:"EndpointName"`
}

// ---- responses

type modelArnResponse struct {
	ModelArn string `json:"ModelArn"`
}

type endpointConfigArnResponse struct {
	EndpointConfigArn string `json:"EndpointConfigArn"`
}

type endpointArnResponse struct {
	EndpointArn string `json:"EndpointArn"`
}

type containerOut struct {
	Image        string            `json:"Image,omitempty"`
	Mode         string            `json:"Mode,omitempty"`
	ModelDataUrl string            `json:"ModelDataUrl,omitempty"`
	Environment  map[string]string `json:"Environment,omitempty"`
}

type describeModelResponse struct {
	ModelName              string        `json:"ModelName"`
	ModelArn               string        `json:"ModelArn"`
	PrimaryContainer       *containerOut `json:"PrimaryContainer,omitempty"`
	ExecutionRoleArn       string        `json:"ExecutionRoleArn,omitempty"`
	CreationTime           *epochTime    `json:"CreationTime"`
	EnableNetworkIsolation bool          `json:"EnableNetworkIsolation"`
}

func describeModel(m *kiln.Model, arn string) describeModelResponse {
	out := describeModelResponse{
		ModelName:        m.ModelName,
		ModelArn:         arn,
		ExecutionRoleArn: m.ExecutionRoleArn,
		CreationTime:     epochOrZero(m.CreationTime),
	}
	if c := m.PrimaryContainer; c != nil {
		out.PrimaryContainer = &containerOut{Image: c.Image, Mode: "SingleModel", ModelDataUrl: c.ModelDataUrl, Environment: c.Environment}
	}
	return out
}

// epochOrZero returns t for a required timestamp member, which must be
// present even when the record has none.
func epochOrZero(t time.Time) *epochTime {
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	e := epochTime(t)
	return &e
}

type productionVariantOut struct {
	VariantName          string  `json:"VariantName"`
	ModelName            string  `json:"ModelName"`
	InitialInstanceCount int     `json:"InitialInstanceCount"`
	InstanceType         string  `json:"InstanceType,omitempty"`
	InitialVariantWeight float64 `json:"InitialVariantWeight"`
}

type describeEndpointConfigResponse struct {
	EndpointConfigName     string                 `json:"EndpointConfigName"`
	EndpointConfigArn      string                 `json:"EndpointConfigArn"`
	ProductionVariants     []productionVariantOut `json:"ProductionVariants"`
	CreationTime           *epochTime             `json:"CreationTime"`
	EnableNetworkIsolation bool                   `json:"EnableNetworkIsolation"`
}

func describeEndpointConfig(c *kiln.EndpointConfig, arn string) describeEndpointConfigResponse {
	out := describeEndpointConfigResponse{
		EndpointConfigName: c.EndpointConfigName,
		EndpointConfigArn:  arn,
		ProductionVariants: []productionVariantOut{},
		CreationTime:       epochOrZero(c.CreationTime),
	}
	for _, v := range c.ProductionVariants {
		out.ProductionVariants = append(out.ProductionVariants, productionVariantOut{
			VariantName:          v.VariantName,
			ModelName:            v.ModelName,
			InitialInstanceCount: v.InitialInstanceCount,
			InstanceType:         v.InstanceType,
			InitialVariantWeight: v.Weight(),
		})
	}
	return out
}

type deployedImageOut struct {
	SpecifiedImage string     `json:"SpecifiedImage,omitempty"`
	ResolvedImage  string     `json:"ResolvedImage,omitempty"`
	ResolutionTime *epochTime `json:"ResolutionTime,omitempty"`
}

type variantStatusOut struct {
	Status        string     `json:"Status"`
	StatusMessage string     `json:"StatusMessage,omitempty"`
	StartTime     *epochTime `json:"StartTime,omitempty"`
}

type variantSummaryOut struct {
	VariantName          string             `json:"VariantName"`
	DeployedImages       []deployedImageOut `json:"DeployedImages,omitempty"`
	CurrentWeight        *float64           `json:"CurrentWeight,omitempty"`
	DesiredWeight        *float64           `json:"DesiredWeight,omitempty"`
	CurrentInstanceCount *int               `json:"CurrentInstanceCount,omitempty"`
	DesiredInstanceCount *int               `json:"DesiredInstanceCount,omitempty"`
	InstanceType         string             `json:"InstanceType,omitempty"` // pending summaries only
	VariantStatus        []variantStatusOut `json:"VariantStatus,omitempty"`
}

func variantSummary(v kiln.VariantSummary) variantSummaryOut {
	out := variantSummaryOut{
		VariantName:          v.VariantName,
		CurrentWeight:        &v.CurrentWeight,
		DesiredWeight:        &v.DesiredWeight,
		CurrentInstanceCount: &v.CurrentInstanceCount,
		DesiredInstanceCount: &v.DesiredInstanceCount,
	}
	for _, d := range v.DeployedImages {
		out.DeployedImages = append(out.DeployedImages, deployedImageOut{
			SpecifiedImage: d.SpecifiedImage, ResolvedImage: d.ResolvedImage, ResolutionTime: newEpoch(d.ResolutionTime),
		})
	}
	for _, s := range v.VariantStatus {
		out.VariantStatus = append(out.VariantStatus, variantStatusOut{
			Status: s.Status, StatusMessage: s.StatusMessage, StartTime: newEpoch(s.StartTime),
		})
	}
	return out
}

type pendingDeploymentOut struct {
	EndpointConfigName string              `json:"EndpointConfigName"`
	ProductionVariants []variantSummaryOut `json:"ProductionVariants,omitempty"`
	StartTime          *epochTime          `json:"StartTime,omitempty"`
}

type describeEndpointResponse struct {
	EndpointName             string                 `json:"EndpointName"`
	EndpointArn              string                 `json:"EndpointArn"`
	EndpointConfigName       string                 `json:"EndpointConfigName,omitempty"`
	ProductionVariants       []variantSummaryOut    `json:"ProductionVariants,omitempty"`
	EndpointStatus           string                 `json:"EndpointStatus"`
	FailureReason            string                 `json:"FailureReason,omitempty"`
	CreationTime             *epochTime             `json:"CreationTime"`
	LastModifiedTime         *epochTime             `json:"LastModifiedTime"`
	LastDeploymentConfig     *kiln.DeploymentConfig `json:"LastDeploymentConfig,omitempty"`
	PendingDeploymentSummary *pendingDeploymentOut  `json:"PendingDeploymentSummary,omitempty"`
	// EvidenceWarning is Kiln's: the last update was promoted although its
	// new fleet answered no request during a bake. SDKs ignore it; raw
	// JSON clients and the AWS CLI's --debug see it.
	EvidenceWarning string `json:"EvidenceWarning,omitempty"`
}

func describeEndpoint(ep *kiln.Endpoint, arn string) describeEndpointResponse {
	out := describeEndpointResponse{
		EndpointName:         ep.EndpointName,
		EndpointArn:          arn,
		EndpointConfigName:   ep.EndpointConfigName,
		EndpointStatus:       ep.EndpointStatus,
		FailureReason:        ep.FailureReason,
		CreationTime:         epochOrZero(ep.CreationTime),
		LastModifiedTime:     epochOrZero(ep.LastModifiedTime),
		LastDeploymentConfig: ep.LastDeploymentConfig,
		EvidenceWarning:      ep.EvidenceWarning,
	}
	for _, v := range ep.ProductionVariants {
		out.ProductionVariants = append(out.ProductionVariants, variantSummary(v))
	}
	out.PendingDeploymentSummary = pendingDeployment(ep)
	return out
}

// pendingDeployment is SageMaker's PendingDeploymentSummary: what the
// endpoint will run once the deployment in progress finishes. SageMaker
// shows it while an endpoint is created or updated to a new config, not
// for a change of weights and instance counts alone.
func pendingDeployment(ep *kiln.Endpoint) *pendingDeploymentOut {
	d := ep.Deployment
	if d == nil || d.Kind == kiln.DeployWeights {
		return nil
	}
	if ep.EndpointStatus != kiln.StatusCreating && ep.EndpointStatus != kiln.StatusUpdating {
		return nil
	}
	out := &pendingDeploymentOut{EndpointConfigName: d.EndpointConfigName, StartTime: newEpoch(d.StartTime)}
	for _, v := range d.Target {
		s := variantSummary(v)
		for _, f := range ep.Fleets {
			if f.VariantName == v.VariantName && f.EndpointConfigName == d.EndpointConfigName {
				s.InstanceType = f.InstanceType
				break
			}
		}
		out.ProductionVariants = append(out.ProductionVariants, s)
	}
	return out
}

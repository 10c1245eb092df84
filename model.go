package kiln

import (
	"fmt"
	"strings"
	"time"
)

// Model names what to run: for the process runtime, Image is a command line.
type Model struct {
	ModelName        string        `json:"ModelName"`
	ModelArn         string        `json:"ModelArn,omitempty"`
	PrimaryContainer *ContainerDef `json:"PrimaryContainer,omitempty"`
	ExecutionRoleArn string        `json:"ExecutionRoleArn,omitempty"`
	Tags             []Tag         `json:"Tags,omitempty"`
	CreationTime     time.Time     `json:"CreationTime"`
}

// ContainerDef is the inference container of a model (REFERENCE.md §4).
type ContainerDef struct {
	// Image is, for the process runtime, the command line that starts one
	// instance, split into words as a shell would split them (no shell runs).
	Image        string            `json:"Image"`
	Environment  map[string]string `json:"Environment,omitempty"`
	ModelDataUrl string            `json:"ModelDataUrl,omitempty"`
	// ContainerStartupHealthCheckTimeoutInSeconds bounds how long a new
	// instance may take to answer /ping with 200; 0 means Kiln's default.
	ContainerStartupHealthCheckTimeoutInSeconds int `json:"ContainerStartupHealthCheckTimeoutInSeconds,omitempty"`
}

// Validate checks a model as submitted by a client.
func (m *Model) Validate() error {
	if err := ValidateModelName("ModelName", m.ModelName); err != nil {
		return err
	}
	if m.PrimaryContainer == nil {
		return Errorf(EINVALID, "PrimaryContainer is required.")
	}
	c := m.PrimaryContainer
	if strings.TrimSpace(c.Image) == "" {
		return Errorf(EINVALID, "PrimaryContainer.Image is required: the command line that starts the model server.")
	}
	if len(c.Image) > MaxImageLength {
		return Errorf(EINVALID, "PrimaryContainer.Image is longer than %d characters.", MaxImageLength)
	}
	if len(c.Environment) > MaxEnvironment {
		return Errorf(EINVALID, "PrimaryContainer.Environment has %d entries; at most %d are allowed.", len(c.Environment), MaxEnvironment)
	}
	for k, v := range c.Environment {
		if !envKeyRE.MatchString(k) || len(k) > MaxEnvKeyLength {
			return Errorf(EINVALID, "PrimaryContainer.Environment key %q must match [a-zA-Z_][a-zA-Z0-9_]* and be at most %d characters.", k, MaxEnvKeyLength)
		}
		if len(v) > MaxEnvValueLength {
			return Errorf(EINVALID, "PrimaryContainer.Environment[%s] is longer than %d characters.", k, MaxEnvValueLength)
		}
	}
	if err := validateEnvironmentHooks(c.Environment); err != nil {
		return err
	}
	if len(c.ModelDataUrl) > 1024 {
		return Errorf(EINVALID, "PrimaryContainer.ModelDataUrl is longer than 1024 characters.")
	}
	if t := c.ContainerStartupHealthCheckTimeoutInSeconds; t != 0 && (t < 60 || t > 3600) {
		return Errorf(EINVALID, "PrimaryContainer.ContainerStartupHealthCheckTimeoutInSeconds must be between 60 and 3600, got %d.", t)
	}
	return validateTags(m.Tags)
}

// ARN builds an Amazon Resource Name for a SageMaker resource. Kiln keeps
// SageMaker's shape so that tools which parse ARNs keep working; resource is
// "model", "endpoint-config" or "endpoint". SageMaker lower-cases the name.
func ARN(region, account, resource, name string) string {
	return fmt.Sprintf("arn:aws:sagemaker:%s:%s:%s/%s", region, account, resource, strings.ToLower(name))
}

package kiln

import (
	"regexp"
	"strconv"
	"strings"
)

// SageMaker's naming rules (REFERENCE.md §1).
var (
	resourceNameRE = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)
	modelNameRE    = regexp.MustCompile(`^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$`)
	envKeyRE       = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	instanceTypeRE = regexp.MustCompile(`^ml\.[a-z0-9-]+\.[a-z0-9-]+$`)
)

// Limits from SageMaker's API model.
const (
	MaxNameLength      = 63
	MaxVariants        = 10
	MaxEnvironment     = 100
	MaxEnvKeyLength    = 1024
	MaxEnvValueLength  = 1024
	MaxTags            = 50
	MaxAlarmNameLength = 255
	MaxRollbackAlarms  = 10
	MaxImageLength     = 255 * 4 // a command line; SageMaker's image URIs are shorter
)

// ValidateName checks an endpoint, endpoint config or variant name.
func ValidateName(field, name string) error {
	if name == "" {
		return Errorf(EINVALID, "%s is required.", field)
	}
	if len(name) > MaxNameLength {
		return Errorf(EINVALID, "%s %q is longer than %d characters.", field, name, MaxNameLength)
	}
	if !resourceNameRE.MatchString(name) {
		return Errorf(EINVALID, "%s %q must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}: letters, digits and hyphens, starting and ending with a letter or digit.", field, name)
	}
	return nil
}

// ValidateModelName checks a model name.
func ValidateModelName(field, name string) error {
	if name == "" {
		return Errorf(EINVALID, "%s is required.", field)
	}
	if len(name) > MaxNameLength {
		return Errorf(EINVALID, "%s %q is longer than %d characters.", field, name, MaxNameLength)
	}
	if !modelNameRE.MatchString(name) {
		return Errorf(EINVALID, "%s %q must match [a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?.", field, name)
	}
	return nil
}

// Tag is a key-value label, kept and returned but not interpreted.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func validateTags(tags []Tag) error {
	if len(tags) > MaxTags {
		return Errorf(EINVALID, "Tags has %d entries; at most %d are allowed.", len(tags), MaxTags)
	}
	for i, t := range tags {
		if t.Key == "" || len(t.Key) > 128 {
			return Errorf(EINVALID, "Tags[%d].Key must be 1 to 128 characters.", i)
		}
		if len(t.Value) > 256 {
			return Errorf(EINVALID, "Tags[%d].Value must be at most 256 characters.", i)
		}
		if t.Key == MinRequestsTag {
			if n, err := strconv.Atoi(strings.TrimSpace(t.Value)); err != nil || n < 0 || n > MaxMinRequestsPerBake {
				return Errorf(EINVALID, "Tags[%d]: %s must be a whole number from 0 to %d, got %q.", i, MinRequestsTag, MaxMinRequestsPerBake, t.Value)
			}
		}
	}
	return nil
}

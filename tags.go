package kiln

import (
	"fmt"
	"strings"
)

// Resource kinds that have tags, as ParseARN names them.
const (
	KindModel          = "model"
	KindEndpointConfig = "endpoint-config"
	KindEndpoint       = "endpoint"
	KindAlarm          = "alarm"
)

// ParseARN splits the ARN of a resource that has tags into its kind, its
// region and account, and its name: arn:aws:sagemaker:REGION:ACCOUNT:KIND/NAME
// for models, endpoint configs and endpoints (whose names ARNs lower-case),
// arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME for alarms.
func ParseARN(arn string) (kind, region, account, name string, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" {
		return "", "", "", "", Errorf(EINVALID, "%q is not an ARN: want arn:aws:sagemaker:REGION:ACCOUNT:endpoint/NAME or the like.", arn)
	}
	region, account = parts[3], parts[4]
	switch parts[2] {
	case "sagemaker":
		kind, name, _ = strings.Cut(parts[5], "/")
		switch kind {
		case KindModel, KindEndpointConfig, KindEndpoint:
		default:
			return "", "", "", "", Errorf(EINVALID, "ARN %q names a %q; Kiln keeps tags on models, endpoint configs, endpoints and alarms.", arn, kind)
		}
	case "cloudwatch":
		kind, name, _ = strings.Cut(parts[5], ":")
		if kind != KindAlarm {
			return "", "", "", "", Errorf(EINVALID, "ARN %q names a CloudWatch %q; Kiln keeps tags on alarms.", arn, kind)
		}
	default:
		return "", "", "", "", Errorf(EINVALID, "ARN %q is of service %q; Kiln keeps tags on sagemaker and cloudwatch resources.", arn, parts[2])
	}
	if name == "" {
		return "", "", "", "", Errorf(EINVALID, "ARN %q names no resource.", arn)
	}
	return kind, region, account, name, nil
}

// AddTags returns tags with add applied: a key that is there already takes
// its new value, and new keys follow in add's order. It fails, naming the
// problem, when add is empty or holds an invalid tag or a key twice, or
// when the result would have more than MaxTags.
func AddTags(tags, add []Tag) ([]Tag, error) {
	if len(add) == 0 {
		return nil, Errorf(EINVALID, "Tags is required: give at least one tag to add.")
	}
	if err := validateTags(add); err != nil {
		return nil, err
	}
	out := append([]Tag(nil), tags...)
	seen := map[string]bool{}
	for i, t := range add {
		if seen[t.Key] {
			return nil, Errorf(EINVALID, "Tags[%d].Key %q is given twice.", i, t.Key)
		}
		seen[t.Key] = true
		if j := tagIndex(out, t.Key); j >= 0 {
			out[j].Value = t.Value
		} else {
			out = append(out, t)
		}
	}
	if len(out) > MaxTags {
		return nil, Errorf(EINVALID, "The resource would have %d tags; at most %d are allowed.", len(out), MaxTags)
	}
	return out, nil
}

// RemoveTags returns tags without those whose keys are listed; keys the
// tags do not have are ignored, as AWS does.
func RemoveTags(tags []Tag, keys []string) ([]Tag, error) {
	if len(keys) == 0 {
		return nil, Errorf(EINVALID, "TagKeys is required: give at least one key to remove.")
	}
	if len(keys) > MaxTags {
		return nil, Errorf(EINVALID, "TagKeys has %d keys; at most %d are allowed.", len(keys), MaxTags)
	}
	out := append([]Tag(nil), tags...)
	for i, k := range keys {
		if k == "" || len(k) > 128 {
			return nil, Errorf(EINVALID, "TagKeys[%d] must be 1 to 128 characters.", i)
		}
		if j := tagIndex(out, k); j >= 0 {
			out = append(out[:j], out[j+1:]...)
		}
	}
	return out, nil
}

func tagIndex(tags []Tag, key string) int {
	for i, t := range tags {
		if t.Key == key {
			return i
		}
	}
	return -1
}

// ResourceNotFound is the message for an ARN that names no resource.
func ResourceNotFound(arn string) string {
	return fmt.Sprintf("Could not find a resource with ARN %q.", arn)
}

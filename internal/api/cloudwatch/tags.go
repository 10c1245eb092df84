package cloudwatch

import (
	"context"
	"net/http"
	"strings"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
)

// readTags reads the Tags member.
func readTags(in params) []kiln.Tag {
	var tags []kiln.Tag
	for _, t := range in.structs("Tags") {
		tags = append(tags, kiln.Tag{Key: t.str("Key"), Value: t.str("Value")})
	}
	return tags
}

// tagsTarget reads ResourceARN, which must name an alarm.
func tagsTarget(in params) (string, error) {
	arn := in.str("ResourceARN")
	if err := in.err(); err != nil {
		return "", err
	}
	switch {
	case arn == "":
		return "", errMissing("ResourceARN is required.")
	case !strings.HasPrefix(arn, "arn:aws:cloudwatch:"):
		return "", errValidation("ResourceARN %q is not a CloudWatch alarm's ARN (arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME).", api.Truncate(arn, 200))
	}
	return arn, nil
}

// tagsError gives the tag operations' not-found error its own shape.
func tagsError(err error) error {
	if kiln.ErrorCode(err) == kiln.ENOTFOUND {
		return &apiError{status: http.StatusNotFound, code: "ResourceNotFoundException", shape: shapeNS + "ResourceNotFoundException", msg: kiln.ErrorMessage(err)}
	}
	return err
}

// encodeTags encodes tags as a result member.
func encodeTags(tags []kiln.Tag) []any {
	out := make([]any, 0, len(tags))
	for _, t := range tags {
		out = append(out, obj{{"Key", t.Key}, {"Value", t.Value}})
	}
	return out
}

func (c *API) tagResource(ctx context.Context, in params) (obj, error) {
	arn, err := tagsTarget(in)
	if err != nil {
		return nil, err
	}
	tags := readTags(in)
	if err := in.err(); err != nil {
		return nil, err
	}
	if _, err = c.Service.AddTags(ctx, arn, tags); err != nil {
		return nil, tagsError(err)
	}
	return obj{}, nil // an empty result, which the query protocol sends
}

func (c *API) untagResource(ctx context.Context, in params) (obj, error) {
	arn, err := tagsTarget(in)
	if err != nil {
		return nil, err
	}
	keys := in.strs("TagKeys")
	if err := in.err(); err != nil {
		return nil, err
	}
	if err := c.Service.DeleteTags(ctx, arn, keys); err != nil {
		return nil, tagsError(err)
	}
	return obj{}, nil
}

func (c *API) listTagsForResource(ctx context.Context, in params) (obj, error) {
	arn, err := tagsTarget(in)
	if err != nil {
		return nil, err
	}
	tags, err := c.Service.ListTags(ctx, arn)
	if err != nil {
		return nil, tagsError(err)
	}
	return obj{{"Tags", encodeTags(tags)}}, nil
}

package cloudwatch

import (
	"context"
	"net/http"
	"strings"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
)

// cwReadTags reads the Tags member.
func cwReadTags(in cwParams) []kiln.Tag {
	var tags []kiln.Tag
	for _, t := range in.structs("Tags") {
		tags = append(tags, kiln.Tag{Key: t.str("Key"), Value: t.str("Value")})
	}
	return tags
}

// cwTagsTarget reads ResourceARN, which must name an alarm.
func cwTagsTarget(in cwParams) (string, error) {
	arn := in.str("ResourceARN")
	if err := in.err(); err != nil {
		return "", err
	}
	switch {
	case arn == "":
		return "", cwErrMissing("ResourceARN is required.")
	case !strings.HasPrefix(arn, "arn:aws:cloudwatch:"):
		return "", cwErrValidation("ResourceARN %q is not a CloudWatch alarm's ARN (arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME).", api.Truncate(arn, 200))
	}
	return arn, nil
}

// cwTagsError gives the tag operations' not-found error its own shape.
func cwTagsError(err error) error {
	if kiln.ErrorCode(err) == kiln.ENOTFOUND {
		return &cwError{status: http.StatusNotFound, code: "ResourceNotFoundException", shape: cwShapeNS + "ResourceNotFoundException", msg: kiln.ErrorMessage(err)}
	}
	return err
}

// cwTags encodes tags as a result member.
func cwTags(tags []kiln.Tag) []any {
	out := make([]any, 0, len(tags))
	for _, t := range tags {
		out = append(out, cwObj{{"Key", t.Key}, {"Value", t.Value}})
	}
	return out
}

func (c *API) tagResource(ctx context.Context, in cwParams) (cwObj, error) {
	arn, err := cwTagsTarget(in)
	if err != nil {
		return nil, err
	}
	tags := cwReadTags(in)
	if err := in.err(); err != nil {
		return nil, err
	}
	if _, err = c.Service.AddTags(ctx, arn, tags); err != nil {
		return nil, cwTagsError(err)
	}
	return cwObj{}, nil // an empty result, which the query protocol sends
}

func (c *API) untagResource(ctx context.Context, in cwParams) (cwObj, error) {
	arn, err := cwTagsTarget(in)
	if err != nil {
		return nil, err
	}
	keys := in.strs("TagKeys")
	if err := in.err(); err != nil {
		return nil, err
	}
	if err := c.Service.DeleteTags(ctx, arn, keys); err != nil {
		return nil, cwTagsError(err)
	}
	return cwObj{}, nil
}

func (c *API) listTagsForResource(ctx context.Context, in cwParams) (cwObj, error) {
	arn, err := cwTagsTarget(in)
	if err != nil {
		return nil, err
	}
	tags, err := c.Service.ListTags(ctx, arn)
	if err != nil {
		return nil, cwTagsError(err)
	}
	return cwObj{{"Tags", cwTags(tags)}}, nil
}

package sagemaker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
)

// API serves SageMaker's control-plane API (awsJson1.1): POST / with
// X-Amz-Target: SageMaker.<Operation> and a JSON body, as the AWS SDKs and
// CLI send it. Each operation is one call on Service.
//
// Errors follow SageMaker: HTTP 400 with {"__type":"ValidationException",
// "message":...} and X-Amzn-ErrorType for anything the caller must fix,
// including a resource that does not exist (the SDK waiters
// EndpointInService and EndpointDeleted depend on that);
// SerializationException for a body that is not the JSON the operation
// takes; UnknownOperationException for an operation Kiln does not serve;
// 500 InternalFailure, logged, for Kiln's own failures.
type API struct {
	Service kiln.Service
	// Region and Account make the ARN of a record that lacks one (the
	// Service sets ARNs when it creates records). Empty means us-east-1
	// and 000000000000.
	Region, Account string
	// Logger receives internal errors. If nil, they are not logged.
	Logger *slog.Logger
}

// SageMaker's error codes.
const (
	codeValidation       = "ValidationException"
	codeSerialization    = "SerializationException"
	codeUnknownOperation = "UnknownOperationException"
	codeInternal         = "InternalFailure"
	codeLimitExceeded    = "ResourceLimitExceeded"
)

// awsError is an error already in the protocol's terms.
type awsError struct {
	status  int
	code    string
	message string
}

func (e *awsError) Error() string { return e.code + ": " + e.message }

func validation(format string, args ...any) error {
	return &awsError{http.StatusBadRequest, codeValidation, fmt.Sprintf(format, args...)}
}

func serialization(format string, args ...any) error {
	return &awsError{http.StatusBadRequest, codeSerialization, fmt.Sprintf(format, args...)}
}

// unsupported refuses a SageMaker member Kiln does not implement.
func unsupported(field, why string) error {
	return validation("Kiln does not support %s: %s.", field, why)
}

// sageMakerOp decodes one operation's request from body and calls Service.
type sageMakerOp func(sm *API, ctx context.Context, body []byte) (any, error)

// sageMakerOps are the operations Kiln serves.
var sageMakerOps = map[string]sageMakerOp{
	"CreateModel": func(sm *API, ctx context.Context, body []byte) (any, error) {
		s := sm.Service
		var in createModelRequest
		if err := decodeAWSJSON(body, &in); err != nil {
			return nil, err
		}
		m, err := in.model()
		if err != nil {
			return nil, err
		}
		out, err := s.CreateModel(ctx, m)
		if err != nil {
			return nil, err
		}
		return modelArnResponse{sm.arn("model", out.ModelName, out.ModelArn)}, nil
	},
	"DescribeModel": func(sm *API, ctx context.Context, body []byte) (any, error) {
		s := sm.Service
		var in modelNameRequest
		if err := decodeName(body, &in, &in.ModelName, "ModelName", kiln.ValidateModelName); err != nil {
			return nil, err
		}
		m, err := s.GetModel(ctx, in.ModelName)
		if err != nil {
			return nil, err
		}
		return describeModel(m, sm.arn("model", m.ModelName, m.ModelArn)), nil
	},
	"DeleteModel": func(sm *API, ctx context.Context, body []byte) (any, error) {
		s := sm.Service
		var in modelNameRequest
		if err := decodeName(body, &in, &in.ModelName, "ModelName", kiln.ValidateModelName); err != nil {
			return nil, err
		}
		return struct{}{}, s.DeleteModel(ctx, in.ModelName)
	},
	"ListModels": listModels.op,

	"CreateEndpointConfig": func(sm *API, ctx context.Context, body []byte) (any, error) {
		s := sm.Service
		var in createEndpointConfigRequest
		if err := decodeAWSJSON(body, &in); err != nil {
			return nil, err
		}
		c, err := in.config()
		if err != nil {
			return nil, err
		}
		out, err := s.CreateEndpointConfig(ctx, c)
		if err != nil {
			return nil, err
		}
		return endpointConfigArnResponse{sm.arn("endpoint-config", out.EndpointConfigName, out.EndpointConfigArn)}, nil
	},
	"DescribeEndpointConfig": func(sm *API, ctx context.Context, body []byte) (any, error) {
		s := sm.Service
		var in endpointConfigNameRequest
		if err := decodeName(body, &in, &in.EndpointConfigName, "EndpointConfigName", kiln.ValidateName); err != nil {
			return nil, err
		}
		c, err := s.GetEndpointConfig(ctx, in.EndpointConfigName)
		if err != nil {
			return nil, err
		}
		return describeEndpointConfig(c, sm.arn("endpoint-config", c.EndpointConfigName, c.EndpointConfigArn)), nil
	},
	"DeleteEndpointConfig": func(sm *API, ctx context.Context, body []byte) (any, error) {
		s := sm.Service
		var in endpointConfigNameRequest
		if err := decodeName(body, &in, &in.EndpointConfigName, "EndpointConfigName", kiln.ValidateName); err != nil {
			return nil, err
		}
		return struct{}{}, s.DeleteEndpointConfig(ctx, in.EndpointConfigName)
	},
	"ListEndpointConfigs": listEndpointConfigs.op,

	"CreateEndpoint": func(sm *API, ctx context.Context, body []byte) (any, error) {
		s := sm.Service
		var in kiln.CreateEndpointInput
		if err := decodeAWSJSON(body, &in); err != nil {
			return nil, err
		}
		ep, err := s.CreateEndpoint(ctx, in)
		if err != nil {
			return nil, err
		}
		return endpointArnResponse{sm.arn("endpoint", ep.EndpointName, ep.EndpointArn)}, nil
	},
	"DescribeEndpoint": func(sm *API, ctx context.Context, body []byte) (any, error) {
		s := sm.Service
		var in endpointNameRequest
		if err := decodeName(body, &in, &in.EndpointName, "EndpointName", kiln.ValidateName); err != nil {
			return nil, err
		}
		ep, err := s.GetEndpoint(ctx, in.EndpointName)
		if err != nil {
			return nil, err
		}
		return describeEndpoint(ep, sm.arn("endpoint", ep.EndpointName, ep.EndpointArn)), nil
	},
	"UpdateEndpoint": func(sm *API, ctx context.Context, body []byte) (any, error) {
		s := sm.Service
		var in kiln.UpdateEndpointInput
		if err := decodeAWSJSON(body, &in); err != nil {
			return nil, err
		}
		ep, err := s.UpdateEndpoint(ctx, in)
		if err != nil {
			return nil, err
		}
		return endpointArnResponse{sm.arn("endpoint", ep.EndpointName, ep.EndpointArn)}, nil
	},
	"UpdateEndpointWeightsAndCapacities": func(sm *API, ctx context.Context, body []byte) (any, error) {
		s := sm.Service
		var req updateWeightsRequest
		if err := decodeAWSJSON(body, &req); err != nil {
			return nil, err
		}
		in, err := req.input()
		if err != nil {
			return nil, err
		}
		ep, err := s.UpdateEndpointWeightsAndCapacities(ctx, in)
		if err != nil {
			return nil, err
		}
		return endpointArnResponse{sm.arn("endpoint", ep.EndpointName, ep.EndpointArn)}, nil
	},
	"DeleteEndpoint": func(sm *API, ctx context.Context, body []byte) (any, error) {
		s := sm.Service
		var in endpointNameRequest
		if err := decodeName(body, &in, &in.EndpointName, "EndpointName", kiln.ValidateName); err != nil {
			return nil, err
		}
		return struct{}{}, s.DeleteEndpoint(ctx, in.EndpointName)
	},
	"ListEndpoints": listEndpoints.op,

	"AddTags": func(sm *API, ctx context.Context, body []byte) (any, error) {
		var in struct {
			ResourceArn string     `json:"ResourceArn"`
			Tags        []kiln.Tag `json:"Tags"`
		}
		if err := decodeAWSJSON(body, &in); err != nil {
			return nil, err
		}
		if err := sageMakerARN(in.ResourceArn); err != nil {
			return nil, err
		}
		tags, err := sm.Service.AddTags(ctx, in.ResourceArn, in.Tags)
		return tagsResponse{Tags: tags}, err
	},
	"DeleteTags": func(sm *API, ctx context.Context, body []byte) (any, error) {
		var in struct {
			ResourceArn string   `json:"ResourceArn"`
			TagKeys     []string `json:"TagKeys"`
		}
		if err := decodeAWSJSON(body, &in); err != nil {
			return nil, err
		}
		if err := sageMakerARN(in.ResourceArn); err != nil {
			return nil, err
		}
		return struct{}{}, sm.Service.DeleteTags(ctx, in.ResourceArn, in.TagKeys)
	},
	"ListTags": func(sm *API, ctx context.Context, body []byte) (any, error) {
		var in struct {
			ResourceArn string  `json:"ResourceArn"`
			MaxResults  *int    `json:"MaxResults"`
			NextToken   *string `json:"NextToken"`
		}
		if err := decodeAWSJSON(body, &in); err != nil {
			return nil, err
		}
		if err := sageMakerARN(in.ResourceArn); err != nil {
			return nil, err
		}
		// A resource has at most 50 tags, which is one page: no token
		// is ever returned.
		if in.MaxResults != nil && (*in.MaxResults < 50 || *in.MaxResults > 100) {
			return nil, validation("MaxResults must be 50 to 100, got %d.", *in.MaxResults)
		}
		if in.NextToken != nil && *in.NextToken != "" {
			return nil, validation("The NextToken %q is not one this operation returned.", api.Truncate(*in.NextToken, 100))
		}
		tags, err := sm.Service.ListTags(ctx, in.ResourceArn)
		return tagsResponse{Tags: tags}, err
	},
}

// arn returns have, or the ARN of a record that has none.
func (sm *API) arn(resource, name, have string) string {
	if have != "" {
		return have
	}
	region, account := sm.Region, sm.Account
	if region == "" {
		region = "us-east-1"
	}
	if account == "" {
		account = "000000000000"
	}
	return kiln.ARN(region, account, resource, name)
}

// Operations returns the names of the operations Kiln serves.
func Operations() []string {
	ops := make([]string, 0, len(sageMakerOps))
	for op := range sageMakerOps {
		ops = append(ops, op)
	}
	return ops
}

func (sm *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if w.Header().Get(api.HeaderRequestID) == "" {
		w.Header().Set(api.HeaderRequestID, api.NewRequestID())
	}
	out, err := sm.serve(r)
	if err != nil {
		sm.fail(w, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		sm.fail(w, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func (sm *API) serve(r *http.Request) (any, error) {
	if r.Method != http.MethodPost {
		return nil, &awsError{http.StatusMethodNotAllowed, codeUnknownOperation, fmt.Sprintf("SageMaker operations are POST requests, not %s.", r.Method)}
	}
	target := r.Header.Get(api.HeaderTarget)
	opName, ok := strings.CutPrefix(target, api.SageMakerTargetPrefix)
	if !ok {
		return nil, &awsError{http.StatusBadRequest, codeUnknownOperation, fmt.Sprintf("X-Amz-Target must be SageMaker.<Operation>, got %q.", api.Truncate(target, 100))}
	}
	op, ok := sageMakerOps[opName]
	if !ok {
		return nil, &awsError{http.StatusBadRequest, codeUnknownOperation, fmt.Sprintf("Kiln does not implement the SageMaker operation %q.", api.Truncate(opName, 100))}
	}
	if need := api.AWSOpPermission(opName); !api.Allowed(r.Context(), need) {
		// SageMaker's awsJson answers AccessDeniedException with 400.
		return nil, &awsError{http.StatusBadRequest, "AccessDeniedException", api.DeniedMessage(r.Context(), need, "sagemaker:"+opName)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, api.MaxRequestBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &awsError{http.StatusRequestEntityTooLarge, codeValidation, fmt.Sprintf("The request body is larger than %d bytes.", mbe.Limit)}
		}
		return nil, serialization("The request body could not be read: %v.", err)
	}
	if sm.Service == nil {
		return nil, errors.New("SageMaker handler has no Service")
	}
	return op(sm, r.Context(), body)
}

// fail writes err in the awsJson1.1 error shape.
func (sm *API) fail(w http.ResponseWriter, err error) {
	var ae *awsError
	if errors.As(err, &ae) {
		api.WriteAWSJSONError(w, ae.status, ae.code, ae.message)
		return
	}
	switch kiln.ErrorCode(err) {
	case kiln.EINVALID, kiln.ENOTFOUND, kiln.ECONFLICT:
		// SageMaker reports all three as ValidationException, and its
		// waiters rely on a missing endpoint being one.
		api.WriteAWSJSONError(w, http.StatusBadRequest, codeValidation, kiln.ErrorMessage(err))
		return
	case kiln.ELIMIT:
		api.WriteAWSJSONError(w, http.StatusBadRequest, codeLimitExceeded, kiln.ErrorMessage(err))
		return
	}
	if sm.Logger != nil {
		sm.Logger.Error("SageMaker request failed", "err", err, "request_id", w.Header().Get(api.HeaderRequestID))
	}
	api.WriteAWSJSONError(w, http.StatusInternalServerError, codeInternal, kiln.ErrorMessage(err))
}

// tagsResponse answers AddTags and ListTags.
type tagsResponse struct {
	Tags []kiln.Tag `json:"Tags"`
}

// sageMakerARN refuses an ARN that is missing or not SageMaker's.
func sageMakerARN(arn string) error {
	switch {
	case arn == "":
		return validation("ResourceArn is required.")
	case !strings.HasPrefix(arn, "arn:aws:sagemaker:"):
		return validation("ResourceArn %q is not a SageMaker ARN (arn:aws:sagemaker:REGION:ACCOUNT:endpoint/NAME or the like).", api.Truncate(arn, 200))
	}
	return nil
}

// decodeName decodes a request whose one member is a required name.
func decodeName(body []byte, v any, name *string, field string, validate func(field, name string) error) error {
	if err := decodeAWSJSON(body, v); err != nil {
		return err
	}
	return validate(field, *name)
}

// decodeAWSJSON decodes an awsJson request body into v. An empty body is
// an empty object. Syntax and type errors are SerializationExceptions, as
// SageMaker's are; a member SageMaker does not have is a
// ValidationException naming it.
func decodeAWSJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return awsJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return serialization("The request body has data after its JSON object.")
	}
	return nil
}

var objectType = reflect.TypeFor[struct{}]()

func awsJSONError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return serialization("The request body is truncated JSON.")
	case errors.As(err, &syn):
		return serialization("The request body is not valid JSON at byte %d: %v.", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "The request body"
		}
		return serialization("%s must be %s, not a JSON %s.", field, jsonTypeName(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return validation("The request has the member %s, which SageMaker's API does not define for this operation.", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	// An UnmarshalJSON of our own (a timestamp, an ignored object) failed.
	return serialization("The request body could not be decoded: %v.", err)
}

// jsonTypeName names the JSON type that decodes into t.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a different type"
}

package gateway

import (
	"fmt"
	"strings"
)

// Header names, in the canonical form net/http stores them in, so that the
// request path indexes http.Header directly instead of canonicalising.
const (
	hContentType      = "Content-Type"
	hContentLength    = "Content-Length"
	hAccept           = "Accept"
	hCustomAttributes = "X-Amzn-Sagemaker-Custom-Attributes"
	hTargetVariant    = "X-Amzn-Sagemaker-Target-Variant"
	hInferenceID      = "X-Amzn-Sagemaker-Inference-Id"
	hInvokedVariant   = "X-Amzn-Invoked-Production-Variant"
	hRequestID        = "X-Amzn-Requestid"
	hErrorType        = "X-Amzn-Errortype"
	hUserAgent        = "User-Agent"
	// InvokeEndpointWithResponseStream's names for the model's Accept and
	// Content-Type, whose own are the event stream's.
	hStreamAccept      = "X-Amzn-Sagemaker-Accept"
	hStreamContentType = "X-Amzn-Sagemaker-Content-Type"
)

// Limits from the SageMaker Runtime API model.
const (
	maxCustomAttributes = 1024
	maxInferenceID      = 64
	maxContentType      = 1024
	maxAccept           = 1024
	maxTargetVariant    = 63
)

const (
	pathPrefix = "/endpoints/"
	pathSuffix = "/invocations"
	// streamSuffix ends InvokeEndpointWithResponseStream's path.
	streamSuffix = "/invocations-response-stream"
)

// endpointFromPath returns the endpoint name in /endpoints/{name}/invocations.
// The name is a substring of path, so looking it up allocates nothing.
func endpointFromPath(path string) (string, bool) {
	return nameInPath(path, pathSuffix)
}

// operationFromPath returns the endpoint name in the path of InvokeEndpoint
// or, with stream true, of InvokeEndpointWithResponseStream.
func operationFromPath(path string) (name string, stream, ok bool) {
	if name, ok := nameInPath(path, pathSuffix); ok {
		return name, false, true
	}
	name, ok = nameInPath(path, streamSuffix)
	return name, ok, ok
}

func nameInPath(path, suffix string) (string, bool) {
	if !strings.HasPrefix(path, pathPrefix) || !strings.HasSuffix(path, suffix) {
		return "", false
	}
	if len(path) <= len(pathPrefix)+len(suffix) {
		return "", false
	}
	name := path[len(pathPrefix) : len(path)-len(suffix)]
	if strings.IndexByte(name, '/') >= 0 {
		return "", false
	}
	return name, true
}

// headerValue returns the first value of a header given in canonical form.
func headerValue(h map[string][]string, key string) (string, bool) {
	v, ok := h[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// checkHeaders validates the request headers passed to the model, returning
// a message for a ValidationError, or "" when they are fine.
func checkHeaders(h map[string][]string) string {
	var v headerValues[string]
	v.customAttributes, v.hasCustomAttributes = headerValue(h, hCustomAttributes)
	v.inferenceID, v.hasInferenceID = headerValue(h, hInferenceID)
	v.contentType, v.hasContentType = headerValue(h, hContentType)
	v.accept, v.hasAccept = headerValue(h, hAccept)
	return v.check()
}

// headerValues are the first values of the headers checkHeaders validates:
// strings from net/http's header map, or bytes of a request head the fast
// path parsed in place.
type headerValues[T string | []byte] struct {
	customAttributes, inferenceID, contentType, accept             T
	hasCustomAttributes, hasInferenceID, hasContentType, hasAccept bool
}

func (h *headerValues[T]) check() string {
	if h.hasCustomAttributes {
		v := h.customAttributes
		if len(v) > maxCustomAttributes {
			return fmt.Sprintf("Value at 'customAttributes' failed to satisfy constraint: Member must have length less than or equal to %d.", maxCustomAttributes)
		}
		if !visibleASCII(v) {
			return "Value at 'customAttributes' failed to satisfy constraint: Member must contain only visible ASCII characters."
		}
	}
	if h.hasInferenceID {
		v := h.inferenceID
		if len(v) < 1 || len(v) > maxInferenceID {
			return fmt.Sprintf("Value at 'inferenceId' failed to satisfy constraint: Member must have length between 1 and %d.", maxInferenceID)
		}
		if v[0] == ' ' || !visibleASCII(v) {
			return "Value at 'inferenceId' failed to satisfy constraint: Member must start with a non-space character and contain only visible ASCII characters."
		}
	}
	if h.hasContentType && len(h.contentType) > maxContentType {
		return fmt.Sprintf("Value at 'contentType' failed to satisfy constraint: Member must have length less than or equal to %d.", maxContentType)
	}
	if h.hasAccept && len(h.accept) > maxAccept {
		return fmt.Sprintf("Value at 'accept' failed to satisfy constraint: Member must have length less than or equal to %d.", maxAccept)
	}
	return ""
}

// visibleASCII reports whether s holds only printable ASCII (space to tilde).
func visibleASCII[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

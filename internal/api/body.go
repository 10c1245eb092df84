package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/kiln-serve/kiln"
)

// MaxRequestBody bounds a control-plane request body.
const MaxRequestBody = 1 << 20

// ErrorBody is the native API's error shape.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// HTTPError is a failure of a request's body that has its own HTTP status
// (415, 413), where StatusOf would say 400.
type HTTPError struct {
	Status        int
	Code, Message string
}

func (e *HTTPError) Error() string { return e.Message }

// WriteJSON writes v as the JSON body of a response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"code":"internal","message":"encoding the response failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// StatusOf maps an application error code to an HTTP status.
func StatusOf(code string) int {
	switch code {
	case kiln.EINVALID:
		return http.StatusBadRequest
	case kiln.ENOTFOUND:
		return http.StatusNotFound
	case kiln.ECONFLICT:
		return http.StatusConflict
	case kiln.ELIMIT:
		// As Kubernetes answers a write beyond a resource quota.
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// ReadJSON reads one JSON value from r's body into v, refusing unknown
// fields, trailing data and bodies over MaxRequestBody, with messages that
// name the problem.
func ReadJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &HTTPError{Status: http.StatusUnsupportedMediaType, Code: kiln.EINVALID, Message: fmt.Sprintf("Content-Type must be application/json, got %q.", ct)}
	}
	body := http.MaxBytesReader(nil, r.Body, MaxRequestBody)
	return DecodeJSON(body, v)
}

// DecodeJSON decodes exactly one JSON value from rd into v with errors a
// person can act on. Unknown fields are refused.
func DecodeJSON(rd io.Reader, v any) error {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return kiln.Errorf(kiln.EINVALID, "The request body has data after its JSON value.")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return kiln.Errorf(kiln.EINVALID, "The request body has data after its JSON value.")
	}
	return nil
}

func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		return kiln.Errorf(kiln.EINVALID, "The request body is empty; a JSON object is required.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return kiln.Errorf(kiln.EINVALID, "The request body is truncated JSON.")
	case errors.As(err, &syn):
		return kiln.Errorf(kiln.EINVALID, "The request body is not valid JSON at byte %d: %v.", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the request body"
		}
		return kiln.Errorf(kiln.EINVALID, "%s must be %s, not JSON %s.", field, typ.Type, typ.Value)
	case errors.As(err, &mbe):
		return &HTTPError{Status: http.StatusRequestEntityTooLarge, Code: kiln.EINVALID, Message: fmt.Sprintf("The request body is larger than %d bytes.", mbe.Limit)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return kiln.Errorf(kiln.EINVALID, "Unknown field %s in the request body.", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return kiln.Errorf(kiln.EINVALID, "The request body could not be decoded: %v.", err)
}

package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error codes of the SageMaker Runtime API, sent in X-Amzn-ErrorType and in
// the body's __type.
const (
	codeValidation         = "ValidationError"
	codeModel              = "ModelError"
	codeServiceUnavailable = "ServiceUnavailable"
	codeUnknownOperation   = "UnknownOperationException"
)

// maxOriginalMessage is how much of a failing model's body a ModelError
// carries: enough for a stack trace's head, small enough for a log line.
const maxOriginalMessage = 4 << 10

// errorBody is the JSON error shape of the rest-json protocol. The model
// fields appear only in a ModelError that the model answered.
type errorBody struct {
	Type               string `json:"__type"`
	Message            string `json:"message"`
	OriginalStatusCode int    `json:"OriginalStatusCode,omitempty"`
	OriginalMessage    string `json:"OriginalMessage,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeErrorBody(w, status, errorBody{Type: code, Message: message})
}

func writeErrorBody(w http.ResponseWriter, status int, e errorBody) {
	b, err := json.Marshal(e)
	if err != nil {
		// Strings always marshal; keep the shape even so.
		b = []byte(`{"__type":"` + e.Type + `","message":""}`)
	}
	h := w.Header()
	h[hContentType] = []string{"application/json"}
	h[hErrorType] = []string{e.Type}
	h[hContentLength] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
}

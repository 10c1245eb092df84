package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"syscall"
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
	setSecurityHeaders(h)
	h[hContentType] = []string{"application/json"}
	h[hErrorType] = []string{e.Type}
	h[hContentLength] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
}

// How a model failed to give a usable answer, in the ModelError that says
// so. Such a failure is recorded as a 424 model error, as a timeout is,
// whether the client got the 424 or, when the model broke off an answer
// whose head had gone out, a connection cut before the end of the body.
const (
	noAnswer  = "it closed the connection without answering"
	badAnswer = "its answer is not a valid HTTP/1.1 response"
	cutShort  = "it broke its answer off before the end"
)

// failureOf tells how a model that may have read the request failed to
// answer it, from the error of the read of its answer.
func failureOf(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return noAnswer
	}
	return badAnswer
}

// failedToAnswer is the ModelError of a model that gave no usable answer.
// It has no OriginalStatusCode: the model sent none, or one that did not
// come with a whole answer.
func (g *Gateway) failedToAnswer(variant, endpoint, how string) errorBody {
	return errorBody{
		Type: codeModel,
		Message: fmt.Sprintf("The model of variant %s failed to answer: %s. The request was not sent again, since the model may have acted on it. See the logs of endpoint %s%s for more information.",
			variant, how, endpoint, g.where()),
	}
}

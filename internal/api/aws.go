package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/smithy-go/encoding/cbor"
)

// Header names of the AWS wire protocols.
const (
	HeaderTarget     = "X-Amz-Target"
	HeaderRequestID  = "X-Amzn-Requestid"
	headerErrorType  = "X-Amzn-Errortype"
	headerQueryError = "X-Amzn-Query-Error"
	headerSmithyProt = "Smithy-Protocol"
)

// CloudWatch's wire identifiers (REFERENCE.md §6): the awsJson1_0 target
// prefix and the path prefix of Smithy RPC v2 CBOR share the service's
// Smithy name.
const (
	cloudWatchTargetPrefix = "GraniteServiceVersion20100801."
	cloudWatchCBORPrefix   = "/service/GraniteServiceVersion20100801/operation/"
	SageMakerTargetPrefix  = "SageMaker."
)

// awsProtocol is the wire protocol a request to the AWS-compatible endpoint
// speaks; it decides the shape of an error written before dispatch.
type awsProtocol int

const (
	protoUnknown     awsProtocol = iota
	protoSageMaker               // awsJson1.1, X-Amz-Target: SageMaker.<Op>
	protoCloudWatchJ             // awsJson1.0, X-Amz-Target: GraniteServiceVersion20100801.<Op>
	protoCloudWatchC             // Smithy RPC v2 CBOR, POST /service/GraniteServiceVersion20100801/operation/<Op>
	protoCloudWatchQ             // awsQuery, form-encoded Action=<Op>
)

// detectProtocol tells the protocols apart by what each SDK always sends:
// the target header, the RPC v2 path, or a form body.
func detectProtocol(r *http.Request) awsProtocol {
	target := r.Header.Get(HeaderTarget)
	switch {
	case strings.HasPrefix(target, SageMakerTargetPrefix):
		return protoSageMaker
	case strings.HasPrefix(target, cloudWatchTargetPrefix):
		return protoCloudWatchJ
	case strings.HasPrefix(r.URL.Path, cloudWatchCBORPrefix):
		return protoCloudWatchC
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/x-www-form-urlencoded" {
		return protoCloudWatchQ
	}
	return protoUnknown
}

// AuthErrorWriter is implemented by a protocol handler that writes
// authentication failures in its own error shape. AWSHandler uses it when
// the CloudWatch handler provides it, and its own rendering otherwise.
type AuthErrorWriter interface {
	WriteAuthError(w http.ResponseWriter, r *http.Request, e *AuthError)
}

// AWSHandler serves the AWS-compatible APIs on one URL, as AWS SDKs expect
// when they are given a single endpoint URL: POST / with X-Amz-Target
// SageMaker.<Op> goes to sm; CloudWatch in any of its three protocols
// (awsJson1.0 target, RPC v2 CBOR path /service/GraniteServiceVersion20100801/operation/<Op>,
// or an awsQuery form body) goes to cw. Anything else gets a 400 that says
// what Kiln expected.
//
// Requests are authenticated with SigV4 before dispatch, and failures are
// written in the error shape of the protocol the request speaks. If auth is
// nil or has no credentials, every request passes.
func AWSHandler(sm, cw http.Handler, auth *Auth) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if w.Header().Get(HeaderRequestID) == "" {
			w.Header().Set(HeaderRequestID, NewRequestID())
		}
		proto := detectProtocol(r)
		if r.Method != http.MethodPost {
			WriteAWSJSONError(w, http.StatusMethodNotAllowed, "UnknownOperationException",
				fmt.Sprintf("Kiln's AWS APIs take POST requests, not %s.", r.Method))
			return
		}
		if proto == protoUnknown {
			WriteAWSJSONError(w, http.StatusBadRequest, "UnknownOperationException",
				"This request names no operation Kiln serves here: send SageMaker requests with the header "+
					"X-Amz-Target: SageMaker.<Operation>, and CloudWatch requests with X-Amz-Target: "+
					"GraniteServiceVersion20100801.<Operation>, to POST "+cloudWatchCBORPrefix+"<Operation>, "+
					"or as a form-encoded Action=<Operation>. Invocations go to POST /endpoints/<name>/invocations.")
			return
		}
		if auth.Enabled() {
			p, aerr := auth.limited(r, func() (Principal, *AuthError) { return auth.verifySigV4(r) })
			if aerr != nil {
				refuse(w, r, aerr)
				writeProtocolAuthError(w, r, proto, cw, aerr)
				return
			}
			r = withPrincipal(r, p)
		}
		if proto == protoSageMaker {
			if sm == nil {
				WriteAWSJSONError(w, http.StatusBadRequest, "UnknownOperationException", "This server does not serve the SageMaker API.")
				return
			}
			sm.ServeHTTP(w, r)
			return
		}
		if cw == nil {
			writeProtocolAuthError(w, r, proto, nil, &AuthError{Status: http.StatusBadRequest, Code: "UnknownOperationException", QueryCode: "InvalidAction", Message: "This server does not serve the CloudWatch API."})
			return
		}
		cw.ServeHTTP(w, r)
	})
}

// writeProtocolAuthError writes e in the error shape of proto.
func writeProtocolAuthError(w http.ResponseWriter, r *http.Request, proto awsProtocol, cw http.Handler, e *AuthError) {
	if proto != protoSageMaker {
		if aw, ok := cw.(AuthErrorWriter); ok {
			aw.WriteAuthError(w, r, e)
			return
		}
	}
	switch proto {
	case protoCloudWatchJ:
		w.Header().Set(headerQueryError, e.queryCode()+";Sender")
		writeJSONError(w, "application/x-amz-json-1.0", e.Status, e.Code, e.Message)
	case protoCloudWatchC:
		writeCBORError(w, e.Status, e.Code, e.queryCode(), e.Message)
	case protoCloudWatchQ:
		writeQueryError(w, e.Status, e.queryCode(), e.Message)
	default:
		WriteAWSJSONAuthError(w, e)
	}
}

// WriteAWSJSONAuthError writes an authentication failure in the awsJson
// shape (SageMaker's control plane). It fits RequireSigV4.
func WriteAWSJSONAuthError(w http.ResponseWriter, e *AuthError) {
	if w.Header().Get(HeaderRequestID) == "" {
		w.Header().Set(HeaderRequestID, NewRequestID())
	}
	WriteAWSJSONError(w, e.Status, e.Code, e.Message)
}

// WriteRuntimeAuthError writes an authentication failure in the rest-json
// shape of the SageMaker Runtime API (InvokeEndpoint), whose clients read
// the code from X-Amzn-ErrorType. It fits RequireSigV4.
func WriteRuntimeAuthError(w http.ResponseWriter, e *AuthError) {
	if w.Header().Get(HeaderRequestID) == "" {
		w.Header().Set(HeaderRequestID, NewRequestID())
	}
	writeJSONError(w, "application/json", e.Status, e.RuntimeCode(), e.Message)
}

// RuntimeCode is e's code as the SageMaker Runtime API names it.
func (e *AuthError) RuntimeCode() string {
	if e.Code == "ValidationException" {
		return "ValidationError" // the runtime's name for it
	}
	return e.Code
}

// WriteAWSJSONError writes an awsJson1.1 error: the code in X-Amzn-ErrorType
// and in the body's __type, which is where botocore and the Go SDK look.
func WriteAWSJSONError(w http.ResponseWriter, status int, code, message string) {
	writeJSONError(w, "application/x-amz-json-1.1", status, code, message)
}

func writeJSONError(w http.ResponseWriter, contentType string, status int, code, message string) {
	b, err := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, message})
	if err != nil {
		b = []byte(`{"__type":"InternalFailure","message":""}`)
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set(headerErrorType, code)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeCBORError writes a Smithy RPC v2 CBOR error. Clients of the
// query-compatible CloudWatch read the code from X-Amzn-Query-Error.
func writeCBORError(w http.ResponseWriter, status int, code, queryCode, message string) {
	b := cbor.Encode(cbor.Map{"__type": cbor.String(code), "message": cbor.String(message)})
	h := w.Header()
	h.Set("Content-Type", "application/cbor")
	h.Set(headerSmithyProt, "rpc-v2-cbor")
	h.Set(headerQueryError, queryCode+";Sender")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeQueryError writes an awsQuery error document.
func writeQueryError(w http.ResponseWriter, status int, code, message string) {
	type errorXML struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	doc := struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		XMLNS     string   `xml:"xmlns,attr"`
		Error     errorXML `xml:"Error"`
		RequestID string   `xml:"RequestId"`
	}{
		XMLNS:     "http://monitoring.amazonaws.com/doc/2010-08-01/",
		Error:     errorXML{Type: "Sender", Code: code, Message: message},
		RequestID: w.Header().Get(HeaderRequestID),
	}
	b, err := xml.Marshal(doc)
	if err != nil {
		b = []byte("<ErrorResponse><Error><Type>Sender</Type><Code>InternalFailure</Code></Error></ErrorResponse>")
	}
	b = append([]byte(xml.Header), b...)
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// NewRequestID returns a random request ID in the UUID form AWS uses.
func NewRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

package cloudwatch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
	"github.com/kiln-serve/kiln/internal/clock"
)

// The names CloudWatch's API model gives the service: the rpc-v2-cbor path
// and the awsJson1_0 target prefix carry the Smithy service shape's name.
const (
	serviceName  = "GraniteServiceVersion20100801"
	cborPrefix   = "/service/" + serviceName + "/operation/"
	targetPrefix = serviceName + "."
	apiVersion   = "2010-08-01"
	xmlns        = "http://monitoring.amazonaws.com/doc/" + apiVersion + "/"
	shapeNS      = "com.amazonaws.cloudwatch#"
)

// API serves the part of Amazon CloudWatch's API that Kiln implements
// (alarms and metric queries, REFERENCE.md §6) in the three wire protocols
// AWS clients use for CloudWatch: Smithy RPC v2 CBOR (aws-sdk-go-v2), awsJson1_0
// (botocore and the AWS CLI v1) and awsQuery (older SDKs and CLIs). Each
// request is decoded, turned into one kiln.Service call (one per statistic or
// metric query for the metric reads), and the answer is encoded in the
// protocol it came in.
//
// API does not authenticate: mount it behind SigV4 verification, for
// requests where IsRequest is true.
type API struct {
	// Service is the control plane every operation calls.
	Service kiln.Service
	// Region and Account name the alarm ARNs CloudWatch reports, for alarms
	// stored without one. Empty means us-east-1 and 000000000000.
	Region, Account string
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
	// Clock supplies "now" where CloudWatch defaults a time range to it
	// (DescribeAlarmHistory without EndDate); give it the service's clock.
	// Nil means the wall clock.
	Clock clock.Clock
}

var _ http.Handler = (*API)(nil)

// IsRequest reports whether r is a CloudWatch API request, from its path
// and headers alone (the body is left unread).
//
// rpc-v2-cbor and awsJson1_0 requests say so in the path and the X-Amz-Target
// header. An awsQuery request names its operation only in the form body, so it
// is recognised by its signing scope (service "monitoring"), or by being a
// form or Action query to "/": Kiln serves no other query-protocol API there,
// and the gateway's invocation paths, which may well receive forms, are never
// "/".
func IsRequest(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, cborPrefix) {
		return true
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		return strings.HasPrefix(t, targetPrefix)
	}
	if strings.Contains(r.Header.Get("Authorization"), "/monitoring/aws4_request") {
		return true
	}
	if r.URL.Path != "/" {
		return false
	}
	if r.Method == http.MethodPost {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		return mt == "application/x-www-form-urlencoded"
	}
	return r.Method == http.MethodGet && r.URL.Query().Get("Action") != "" && r.URL.Query().Get("Version") == apiVersion
}

// protocol is the wire protocol of one request.
type protocol int

const (
	protoQuery protocol = iota
	protoJSON
	protoCBOR
)

func (p protocol) String() string {
	return [...]string{"awsQuery", "awsJson1_0", "rpc-v2-cbor"}[p]
}

func protocolOf(r *http.Request) protocol {
	switch {
	case strings.HasPrefix(r.URL.Path, cborPrefix):
		return protoCBOR
	case r.Header.Get("X-Amz-Target") != "":
		return protoJSON
	}
	return protoQuery
}

// apiError is an error in CloudWatch's terms.
type apiError struct {
	status int
	// code is the awsQuery error code, which botocore and the Go SDK also
	// report for the JSON and CBOR protocols, from X-Amzn-Query-Error (the
	// service is awsQueryCompatible).
	code string
	// shape is the error's shape name for the JSON and CBOR __type, or ""
	// when it is the same as code.
	shape string
	msg   string
	// noQueryCode leaves out X-Amzn-Query-Error, so that clients report
	// the shape name itself.
	noQueryCode bool
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func (e *apiError) typeName() string {
	if e.shape != "" {
		return e.shape
	}
	return e.code
}

func (e *apiError) fault() string {
	if e.status >= 500 {
		return "Receiver"
	}
	return "Sender"
}

// The errors CloudWatch's model declares, with their awsQuery codes and
// statuses; ValidationError is what CloudWatch's request validation answers
// for malformed or out-of-range members.
func errValidation(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "ValidationError", shape: shapeNS + "ValidationException", msg: fmt.Sprintf(format, args...)}
}

func errMissing(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "MissingParameter", shape: shapeNS + "MissingRequiredParameterException", msg: fmt.Sprintf(format, args...)}
}

func errInvalidValue(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidParameterValue", shape: shapeNS + "InvalidParameterValueException", msg: fmt.Sprintf(format, args...)}
}

func errCombination(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidParameterCombination", shape: shapeNS + "InvalidParameterCombinationException", msg: fmt.Sprintf(format, args...)}
}

func errNextToken(token string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidNextToken", shape: shapeNS + "InvalidNextToken", msg: fmt.Sprintf("The NextToken %q is not one this operation returned.", token)}
}

// errorOf maps any error to CloudWatch's terms. Service errors carry a
// kiln code; everything else is internal.
func errorOf(err error) *apiError {
	var ce *apiError
	if errors.As(err, &ce) {
		return ce
	}
	msg := kiln.ErrorMessage(err)
	switch kiln.ErrorCode(err) {
	case kiln.EINVALID:
		return errValidation("%s", msg)
	case kiln.ENOTFOUND:
		return &apiError{status: http.StatusNotFound, code: "ResourceNotFound", shape: shapeNS + "ResourceNotFound", msg: msg}
	case kiln.ECONFLICT:
		return &apiError{status: http.StatusConflict, code: "ResourceConflict", shape: shapeNS + "ResourceConflict", msg: msg}
	case kiln.ELIMIT:
		// PutMetricAlarm's LimitExceededFault.
		return &apiError{status: http.StatusBadRequest, code: "LimitExceeded", shape: shapeNS + "LimitExceededFault", msg: msg}
	}
	return &apiError{status: http.StatusInternalServerError, code: "InternalServiceError", shape: shapeNS + "InternalServiceFault", msg: msg}
}

// operation is one operation: it reads the request's members, calls the
// service, and returns the result's members (nil for an operation whose
// result is empty).
type operation func(c *API, ctx context.Context, in params) (obj, error)

// operations are the operations Kiln implements; the rest are unknown to it.
var operations = map[string]operation{
	"PutMetricAlarm":       (*API).putMetricAlarm,
	"PutCompositeAlarm":    (*API).putCompositeAlarm,
	"DescribeAlarms":       (*API).describeAlarms,
	"DeleteAlarms":         (*API).deleteAlarms,
	"SetAlarmState":        (*API).setAlarmState,
	"DescribeAlarmHistory": (*API).describeAlarmHistory,
	"GetMetricStatistics":  (*API).getMetricStatistics,
	"GetMetricData":        (*API).getMetricData,
	"ListMetrics":          (*API).listMetrics,
	"PutMetricData":        (*API).putMetricData,
	"TagResource":          (*API).tagResource,
	"UntagResource":        (*API).untagResource,
	"ListTagsForResource":  (*API).listTagsForResource,
}

// ServeHTTP answers one CloudWatch request in the protocol it came in.
func (c *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	proto := protocolOf(r)
	reqID := startResponse(w, proto)
	op := ""
	defer func() {
		// A bug must cost one request, never the process.
		if v := recover(); v != nil {
			c.logError("cloudwatch request panicked", proto, op, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			writeError(w, proto, reqID, &apiError{status: http.StatusInternalServerError, code: "InternalServiceError", shape: shapeNS + "InternalServiceFault", msg: "An internal error occurred."})
		}
	}()
	op, out, err := c.serve(r, proto)
	if err != nil {
		ce := errorOf(err)
		if ce.status >= 500 {
			c.logError("cloudwatch request failed", proto, op, err)
		}
		writeError(w, proto, reqID, ce)
		return
	}
	writeResult(w, proto, reqID, op, out)
}

// startResponse sets the headers every response carries and returns the request
// ID, keeping one a dispatcher in front has already chosen.
func startResponse(w http.ResponseWriter, proto protocol) string {
	h := w.Header()
	reqID := h.Get("X-Amzn-RequestId")
	if reqID == "" {
		reqID = api.NewRequestID()
		h.Set("X-Amzn-RequestId", reqID)
	}
	if proto == protoCBOR {
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
	}
	return reqID
}

// decompress undoes a request body's Content-Encoding: gzip, up to
// api.MaxRequestBody bytes.
func decompress(enc string, body []byte) ([]byte, error) {
	if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
		return nil, errValidation("Content-Encoding %q is not supported: send gzip or none.", api.Truncate(enc, 50))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, errValidation("The request body is not valid gzip: %v.", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, api.MaxRequestBody+1))
	if err != nil {
		return nil, errValidation("The request body is not valid gzip: %v.", err)
	}
	if len(out) > api.MaxRequestBody {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, code: "RequestEntityTooLarge", msg: fmt.Sprintf("The request body is larger than %d bytes once decompressed.", api.MaxRequestBody)}
	}
	return out, nil
}

func (c *API) serve(r *http.Request, proto protocol) (op string, out obj, err error) {
	if r.Method != http.MethodPost && !(proto == protoQuery && r.Method == http.MethodGet) {
		return "", nil, &apiError{status: http.StatusMethodNotAllowed, code: "InvalidAction", shape: "UnknownOperationException", msg: fmt.Sprintf("CloudWatch requests are POSTs, not %s.", r.Method)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, api.MaxRequestBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", nil, &apiError{status: http.StatusRequestEntityTooLarge, code: "RequestEntityTooLarge", msg: fmt.Sprintf("The request body is larger than %d bytes.", mbe.Limit)}
		}
		return "", nil, errValidation("The request body could not be read: %v.", err)
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" {
		// The SDKs compress PutMetricData's bodies.
		if body, err = decompress(enc, body); err != nil {
			return "", nil, err
		}
	}
	var in params
	switch proto {
	case protoCBOR:
		op = strings.TrimPrefix(r.URL.Path, cborPrefix)
		in, err = decodeCBOR(body)
	case protoJSON:
		t := r.Header.Get("X-Amz-Target")
		op, _ = strings.CutPrefix(t, targetPrefix)
		if op == t {
			return "", nil, unknownOperation(proto, t)
		}
		in, err = decodeJSON(body)
	default:
		op, in, err = decodeQuery(r.URL.RawQuery, body, r.Method == http.MethodPost)
	}
	f, ok := operations[op]
	switch {
	case !ok && op == "" && proto == protoQuery:
		if err != nil {
			return "", nil, err
		}
		return "", nil, &apiError{status: http.StatusBadRequest, code: "MissingAction", msg: "The request has no Action parameter naming the operation."}
	case !ok:
		return op, nil, unknownOperation(proto, op)
	case err != nil:
		return op, nil, err
	}
	if need := api.AWSOpPermission(op); !api.Allowed(r.Context(), need) {
		// As CloudWatch answers: AccessDenied, 403, in every protocol.
		return op, nil, &apiError{status: http.StatusForbidden, code: "AccessDenied", shape: "AccessDeniedException", msg: api.DeniedMessage(r.Context(), need, "cloudwatch:"+op)}
	}
	out, err = f(c, r.Context(), in)
	if err == nil {
		// Every operation checks this before calling the service; this
		// only guards against one that forgot.
		err = in.err()
	}
	return op, out, err
}

func unknownOperation(proto protocol, op string) *apiError {
	if len(op) > 64 {
		op = op[:64] + "..."
	}
	if proto == protoQuery {
		return &apiError{status: http.StatusBadRequest, code: "InvalidAction", msg: fmt.Sprintf("The action %q is not valid for this endpoint: Kiln's CloudWatch API implements %s.", op, operationList())}
	}
	// rpc-v2-cbor answers an unknown operation with 404 by its
	// specification; awsJson1_0 services answer 400.
	status := http.StatusBadRequest
	if proto == protoCBOR {
		status = http.StatusNotFound
	}
	return &apiError{status: status, code: "UnknownOperationException", noQueryCode: true, msg: fmt.Sprintf("Unknown operation %q: Kiln's CloudWatch API implements %s.", op, operationList())}
}

func operationList() string {
	return "PutMetricAlarm, DescribeAlarms, DeleteAlarms, SetAlarmState, DescribeAlarmHistory, GetMetricStatistics, GetMetricData and ListMetrics"
}

func (c *API) logError(msg string, proto protocol, op string, err error) {
	if c.Logger != nil {
		c.Logger.Error(msg, "protocol", proto.String(), "operation", op, "err", err)
	}
}

func (c *API) now() time.Time {
	if c.Clock == nil {
		return time.Now()
	}
	return c.Clock.Now()
}

func (c *API) alarmArn(name string) string {
	region, account := c.Region, c.Account
	if region == "" {
		region = "us-east-1"
	}
	if account == "" {
		account = "000000000000"
	}
	return fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", region, account, name)
}

func writeResult(w http.ResponseWriter, proto protocol, reqID, op string, out obj) {
	var (
		body []byte
		ct   string
	)
	switch proto {
	case protoCBOR:
		body, ct = encodeCBOR(out), "application/cbor"
	case protoJSON:
		body, ct = encodeJSON(out), "application/x-amz-json-1.0"
	default:
		body, ct = encodeQueryResult(op, reqID, out), "text/xml"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func writeError(w http.ResponseWriter, proto protocol, reqID string, e *apiError) {
	h := w.Header()
	var body []byte
	switch proto {
	case protoCBOR, protoJSON:
		if !e.noQueryCode {
			h.Set("X-Amzn-Query-Error", e.code+";"+e.fault())
		}
		h.Set("X-Amzn-ErrorType", e.typeName())
		o := obj{{"__type", e.typeName()}, {"message", e.msg}}
		if proto == protoCBOR {
			body = encodeCBOR(o)
			h.Set("Content-Type", "application/cbor")
		} else {
			body = encodeJSON(o)
			h.Set("Content-Type", "application/x-amz-json-1.0")
		}
	default:
		body = encodeQueryError(reqID, e)
		h.Set("Content-Type", "text/xml")
	}
	w.WriteHeader(e.status)
	w.Write(body)
}

// CloudWatch's limits, from its API model.
const (
	maxAlarmNames    = 100
	maxDimensions    = 30
	maxRecords       = 100
	defaultRecords   = 50
	maxStatistics    = 5
	maxExtendedStats = 10
	maxMetricQueries = 500
	listMetricsPage  = 500
)

// unsupportedMember is a member of a request that Kiln does not implement. A
// request using one is refused rather than stored without it.
type unsupportedMember struct{ member, why string }

const (
	noActions     = "alarm actions are not supported by Kiln: its alarms act by rolling back the deployments that watch them"
	noSuppression = "action suppression is not supported by Kiln, whose alarms have no actions"
)

// refuse refuses a request that uses one of the members listed.
func refuse(in params, unsupported []unsupportedMember) error {
	for _, u := range unsupported {
		if in.has(u.member) {
			return errValidation("%s: %s.", u.member, u.why)
		}
	}
	return nil
}

// checkEnum accepts "" (absent) or one of the values.
func checkEnum(member, v string, values ...string) error {
	if v == "" || slices.Contains(values, v) {
		return nil
	}
	return errValidation("%s %q is not one of %s.", member, v, strings.Join(values, ", "))
}

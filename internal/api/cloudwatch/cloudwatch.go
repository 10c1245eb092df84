package cloudwatch

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
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
	cwService    = "GraniteServiceVersion20100801"
	cwCBORPrefix = "/service/" + cwService + "/operation/"
	cwTarget     = cwService + "."
	cwVersion    = "2010-08-01"
	cwXMLNS      = "http://monitoring.amazonaws.com/doc/" + cwVersion + "/"
	cwShapeNS    = "com.amazonaws.cloudwatch#"
)

// CloudWatch serves the part of Amazon CloudWatch's API that Kiln implements
// (alarms and metric queries, REFERENCE.md §6) in the three wire protocols
// AWS clients use for CloudWatch: Smithy RPC v2 CBOR (aws-sdk-go-v2), awsJson1_0
// (botocore and the AWS CLI v1) and awsQuery (older SDKs and CLIs). Each
// request is decoded, turned into one kiln.Service call (one per statistic or
// metric query for the metric reads), and the answer is encoded in the
// protocol it came in.
//
// CloudWatch does not authenticate: mount it behind SigV4 verification, for
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
	if strings.HasPrefix(r.URL.Path, cwCBORPrefix) {
		return true
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		return strings.HasPrefix(t, cwTarget)
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
	return r.Method == http.MethodGet && r.URL.Query().Get("Action") != "" && r.URL.Query().Get("Version") == cwVersion
}

// cwProtocol is the wire protocol of one request.
type cwProtocol int

const (
	cwQuery cwProtocol = iota
	cwJSON
	cwCBOR
)

func (p cwProtocol) String() string {
	return [...]string{"awsQuery", "awsJson1_0", "rpc-v2-cbor"}[p]
}

func cwProtocolOf(r *http.Request) cwProtocol {
	switch {
	case strings.HasPrefix(r.URL.Path, cwCBORPrefix):
		return cwCBOR
	case r.Header.Get("X-Amz-Target") != "":
		return cwJSON
	}
	return cwQuery
}

// cwError is an error in CloudWatch's terms.
type cwError struct {
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

func (e *cwError) Error() string { return e.code + ": " + e.msg }

func (e *cwError) typeName() string {
	if e.shape != "" {
		return e.shape
	}
	return e.code
}

func (e *cwError) fault() string {
	if e.status >= 500 {
		return "Receiver"
	}
	return "Sender"
}

// The errors CloudWatch's model declares, with their awsQuery codes and
// statuses; ValidationError is what CloudWatch's request validation answers
// for malformed or out-of-range members.
func cwErrValidation(format string, args ...any) *cwError {
	return &cwError{status: http.StatusBadRequest, code: "ValidationError", shape: cwShapeNS + "ValidationException", msg: fmt.Sprintf(format, args...)}
}

func cwErrMissing(format string, args ...any) *cwError {
	return &cwError{status: http.StatusBadRequest, code: "MissingParameter", shape: cwShapeNS + "MissingRequiredParameterException", msg: fmt.Sprintf(format, args...)}
}

func cwErrInvalidValue(format string, args ...any) *cwError {
	return &cwError{status: http.StatusBadRequest, code: "InvalidParameterValue", shape: cwShapeNS + "InvalidParameterValueException", msg: fmt.Sprintf(format, args...)}
}

func cwErrCombination(format string, args ...any) *cwError {
	return &cwError{status: http.StatusBadRequest, code: "InvalidParameterCombination", shape: cwShapeNS + "InvalidParameterCombinationException", msg: fmt.Sprintf(format, args...)}
}

func cwErrNextToken(token string) *cwError {
	return &cwError{status: http.StatusBadRequest, code: "InvalidNextToken", shape: cwShapeNS + "InvalidNextToken", msg: fmt.Sprintf("The NextToken %q is not one this operation returned.", token)}
}

// cwErrorOf maps any error to CloudWatch's terms. Service errors carry a
// kiln code; everything else is internal.
func cwErrorOf(err error) *cwError {
	var ce *cwError
	if errors.As(err, &ce) {
		return ce
	}
	msg := kiln.ErrorMessage(err)
	switch kiln.ErrorCode(err) {
	case kiln.EINVALID:
		return cwErrValidation("%s", msg)
	case kiln.ENOTFOUND:
		return &cwError{status: http.StatusNotFound, code: "ResourceNotFound", shape: cwShapeNS + "ResourceNotFound", msg: msg}
	case kiln.ECONFLICT:
		return &cwError{status: http.StatusConflict, code: "ResourceConflict", shape: cwShapeNS + "ResourceConflict", msg: msg}
	case kiln.ELIMIT:
		// PutMetricAlarm's LimitExceededFault.
		return &cwError{status: http.StatusBadRequest, code: "LimitExceeded", shape: cwShapeNS + "LimitExceededFault", msg: msg}
	}
	return &cwError{status: http.StatusInternalServerError, code: "InternalServiceError", shape: cwShapeNS + "InternalServiceFault", msg: msg}
}

// cwOp is one operation: it reads the request's members, calls the
// service, and returns the result's members (nil for an operation whose
// result is empty).
type cwOp func(c *API, ctx context.Context, in cwParams) (cwObj, error)

// cwOps are the operations Kiln implements; the rest are unknown to it.
var cwOps = map[string]cwOp{
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
	proto := cwProtocolOf(r)
	reqID := cwStart(w, proto)
	op := ""
	defer func() {
		// A bug must cost one request, never the process.
		if v := recover(); v != nil {
			c.logError("cloudwatch request panicked", proto, op, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			cwWriteError(w, proto, reqID, &cwError{status: http.StatusInternalServerError, code: "InternalServiceError", shape: cwShapeNS + "InternalServiceFault", msg: "An internal error occurred."})
		}
	}()
	op, out, err := c.serve(r, proto)
	if err != nil {
		ce := cwErrorOf(err)
		if ce.status >= 500 {
			c.logError("cloudwatch request failed", proto, op, err)
		}
		cwWriteError(w, proto, reqID, ce)
		return
	}
	cwWriteResult(w, proto, reqID, op, out)
}

// cwStart sets the headers every response carries and returns the request
// ID, keeping one a dispatcher in front has already chosen.
func cwStart(w http.ResponseWriter, proto cwProtocol) string {
	h := w.Header()
	reqID := h.Get("X-Amzn-RequestId")
	if reqID == "" {
		reqID = cwRequestID()
		h.Set("X-Amzn-RequestId", reqID)
	}
	if proto == cwCBOR {
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
	}
	return reqID
}

// cwDecompress undoes a request body's Content-Encoding: gzip, up to
// api.MaxRequestBody bytes.
func cwDecompress(enc string, body []byte) ([]byte, error) {
	if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
		return nil, cwErrValidation("Content-Encoding %q is not supported: send gzip or none.", api.Truncate(enc, 50))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, cwErrValidation("The request body is not valid gzip: %v.", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, api.MaxRequestBody+1))
	if err != nil {
		return nil, cwErrValidation("The request body is not valid gzip: %v.", err)
	}
	if len(out) > api.MaxRequestBody {
		return nil, &cwError{status: http.StatusRequestEntityTooLarge, code: "RequestEntityTooLarge", msg: fmt.Sprintf("The request body is larger than %d bytes once decompressed.", api.MaxRequestBody)}
	}
	return out, nil
}

func (c *API) serve(r *http.Request, proto cwProtocol) (op string, out cwObj, err error) {
	if r.Method != http.MethodPost && !(proto == cwQuery && r.Method == http.MethodGet) {
		return "", nil, &cwError{status: http.StatusMethodNotAllowed, code: "InvalidAction", shape: "UnknownOperationException", msg: fmt.Sprintf("CloudWatch requests are POSTs, not %s.", r.Method)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, api.MaxRequestBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", nil, &cwError{status: http.StatusRequestEntityTooLarge, code: "RequestEntityTooLarge", msg: fmt.Sprintf("The request body is larger than %d bytes.", mbe.Limit)}
		}
		return "", nil, cwErrValidation("The request body could not be read: %v.", err)
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" {
		// The SDKs compress PutMetricData's bodies.
		if body, err = cwDecompress(enc, body); err != nil {
			return "", nil, err
		}
	}
	var in cwParams
	switch proto {
	case cwCBOR:
		op = strings.TrimPrefix(r.URL.Path, cwCBORPrefix)
		in, err = cwDecodeCBOR(body)
	case cwJSON:
		t := r.Header.Get("X-Amz-Target")
		op, _ = strings.CutPrefix(t, cwTarget)
		if op == t {
			return "", nil, cwUnknownOperation(proto, t)
		}
		in, err = cwDecodeJSON(body)
	default:
		op, in, err = cwDecodeQuery(r.URL.RawQuery, body, r.Method == http.MethodPost)
	}
	f, ok := cwOps[op]
	switch {
	case !ok && op == "" && proto == cwQuery:
		if err != nil {
			return "", nil, err
		}
		return "", nil, &cwError{status: http.StatusBadRequest, code: "MissingAction", msg: "The request has no Action parameter naming the operation."}
	case !ok:
		return op, nil, cwUnknownOperation(proto, op)
	case err != nil:
		return op, nil, err
	}
	if need := api.AWSOpPermission(op); !api.Allowed(r.Context(), need) {
		// As CloudWatch answers: AccessDenied, 403, in every protocol.
		return op, nil, &cwError{status: http.StatusForbidden, code: "AccessDenied", shape: "AccessDeniedException", msg: api.DeniedMessage(r.Context(), need, "cloudwatch:"+op)}
	}
	out, err = f(c, r.Context(), in)
	if err == nil {
		// Every operation checks this before calling the service; this
		// only guards against one that forgot.
		err = in.err()
	}
	return op, out, err
}

func cwUnknownOperation(proto cwProtocol, op string) *cwError {
	if len(op) > 64 {
		op = op[:64] + "..."
	}
	if proto == cwQuery {
		return &cwError{status: http.StatusBadRequest, code: "InvalidAction", msg: fmt.Sprintf("The action %q is not valid for this endpoint: Kiln's CloudWatch API implements %s.", op, cwOpList())}
	}
	// rpc-v2-cbor answers an unknown operation with 404 by its
	// specification; awsJson1_0 services answer 400.
	status := http.StatusBadRequest
	if proto == cwCBOR {
		status = http.StatusNotFound
	}
	return &cwError{status: status, code: "UnknownOperationException", noQueryCode: true, msg: fmt.Sprintf("Unknown operation %q: Kiln's CloudWatch API implements %s.", op, cwOpList())}
}

func cwOpList() string {
	return "PutMetricAlarm, DescribeAlarms, DeleteAlarms, SetAlarmState, DescribeAlarmHistory, GetMetricStatistics, GetMetricData and ListMetrics"
}

func (c *API) logError(msg string, proto cwProtocol, op string, err error) {
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

// cwRequestID returns a random UUID, the form of AWS request IDs.
func cwRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func cwWriteResult(w http.ResponseWriter, proto cwProtocol, reqID, op string, out cwObj) {
	var (
		body []byte
		ct   string
	)
	switch proto {
	case cwCBOR:
		body, ct = cwEncodeCBOR(out), "application/cbor"
	case cwJSON:
		body, ct = cwEncodeJSON(out), "application/x-amz-json-1.0"
	default:
		body, ct = cwEncodeQueryResult(op, reqID, out), "text/xml"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func cwWriteError(w http.ResponseWriter, proto cwProtocol, reqID string, e *cwError) {
	h := w.Header()
	var body []byte
	switch proto {
	case cwCBOR, cwJSON:
		if !e.noQueryCode {
			h.Set("X-Amzn-Query-Error", e.code+";"+e.fault())
		}
		h.Set("X-Amzn-ErrorType", e.typeName())
		o := cwObj{{"__type", e.typeName()}, {"message", e.msg}}
		if proto == cwCBOR {
			body = cwEncodeCBOR(o)
			h.Set("Content-Type", "application/cbor")
		} else {
			body = cwEncodeJSON(o)
			h.Set("Content-Type", "application/x-amz-json-1.0")
		}
	default:
		body = cwEncodeQueryError(reqID, e)
		h.Set("Content-Type", "text/xml")
	}
	w.WriteHeader(e.status)
	w.Write(body)
}

// CloudWatch's limits, from its API model.
const (
	cwMaxAlarmNames    = 100
	cwMaxDimensions    = 30
	cwMaxRecords       = 100
	cwDefaultRecords   = 50
	cwMaxStatistics    = 5
	cwMaxExtendedStats = 10
	cwMaxMetricQueries = 500
	cwListMetricsPage  = 500
)

// cwUnsupported is a member of a request that Kiln does not implement. A
// request using one is refused rather than stored without it.
type cwUnsupported struct{ member, why string }

const (
	cwNoActions     = "alarm actions are not supported by Kiln: its alarms act by rolling back the deployments that watch them"
	cwNoSuppression = "action suppression is not supported by Kiln, whose alarms have no actions"
)

// cwRefuse refuses a request that uses one of the members listed.
func cwRefuse(in cwParams, unsupported []cwUnsupported) error {
	for _, u := range unsupported {
		if in.has(u.member) {
			return cwErrValidation("%s: %s.", u.member, u.why)
		}
	}
	return nil
}

// cwCheckEnum accepts "" (absent) or one of the values.
func cwCheckEnum(member, v string, values ...string) error {
	if v == "" || slices.Contains(values, v) {
		return nil
	}
	return cwErrValidation("%s %q is not one of %s.", member, v, strings.Join(values, ", "))
}

package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/eventstream"

	"github.com/kiln-serve/kiln/internal/clock"
)

// errModelTimeout is the cause of an upstream context cancelled because the
// model took longer than ModelTimeout.
var errModelTimeout = errors.New("model timed out")

// maxDrain is how much of an unwanted model body is read so that its
// connection can be reused; past it, closing the connection is cheaper.
const maxDrain = 256 << 10

// ServeHTTP handles POST /endpoints/{EndpointName}/invocations with the
// SageMaker Runtime API's semantics.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.clock.Now()
	w.Header()[hRequestID] = []string{g.requestID()}
	if g.authorize != nil {
		var body *eofReader
		if r.Body != nil && r.Body != http.NoBody {
			body = &eofReader{ReadCloser: r.Body}
			r.Body = body
		}
		if ref := g.authorize(r); ref != nil {
			if body != nil && !body.eof {
				// Answer at once and close, rather than let net/http read
				// the refused body before and after the answer (see
				// api.DontReadBody).
				w.Header()["Connection"] = []string{"close"}
				_ = http.NewResponseController(w).SetReadDeadline(time.Unix(1, 0))
			}
			writeError(w, ref.Status, ref.Code, ref.Message)
			return
		}
	}
	name, stream, ok := operationFromPath(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, codeUnknownOperation,
			"Unknown operation: the runtime API serves POST /endpoints/{EndpointName}/invocations and /endpoints/{EndpointName}/invocations-response-stream.")
		return
	}
	if r.Method != http.MethodPost {
		w.Header()["Allow"] = []string{http.MethodPost}
		writeError(w, http.StatusMethodNotAllowed, codeUnknownOperation,
			fmt.Sprintf("Method %s is not allowed on %s; use POST.", r.Method, r.URL.Path))
		return
	}

	ep := g.table.Load().endpoints[name]
	if ep == nil {
		writeError(w, http.StatusBadRequest, codeValidation, g.notFound(name))
		return
	}
	if stream {
		// The model's Accept comes in X-Amzn-SageMaker-Accept; Accept
		// itself is the event stream's.
		if v, ok := r.Header[hStreamAccept]; ok {
			r.Header[hAccept] = v
		} else {
			delete(r.Header, hAccept)
		}
	}
	if msg := checkHeaders(r.Header); msg != "" {
		writeError(w, http.StatusBadRequest, codeValidation, msg)
		return
	}
	target, _ := headerValue(r.Header, hTargetVariant)
	if target != "" && ep.variant(target) == nil {
		writeError(w, http.StatusBadRequest, codeValidation, g.variantNotFound(name, target))
		return
	}

	if r.ContentLength > g.maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, codeValidation, g.tooLarge())
		return
	}
	body := getBody()
	var openBodies atomic.Int32
	defer func() {
		// See upstreamBody: a transport may still hold a reading of it.
		if body != nil && openBodies.Load() == 0 {
			putBody(body)
		}
	}()
	if err := g.readBody(w, r, body); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, codeValidation, g.tooLarge())
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The rest of the body is not waited for.
			w.Header()["Connection"] = []string{"close"}
			writeError(w, http.StatusRequestTimeout, codeValidation,
				fmt.Sprintf("The request body did not arrive within %s.", g.bodyTimeout))
		default:
			writeError(w, http.StatusBadRequest, codeValidation, "Could not read the request body: "+err.Error())
		}
		return
	}

	if stream {
		// Answered here, on net/http: the fast path answers InvokeEndpoint.
		x := exchange{g: g, w: w, r: r, start: start, endpoint: name, target: target, body: body.Bytes(), openBodies: &openBodies, stream: true}
		x.serve()
		return
	}
	if c := g.takeOver(w, r); c != nil {
		var tv *variantTable
		if target != "" {
			tv = ep.variant(target)
		}
		c.passHeaders(r.Header)
		// The connection goes on on a goroutine of its own, which the
		// Gateway's connection set owns: as this handler returns, net/http
		// lets go of what it held for the connection.
		b := body
		body = nil
		go func() {
			c.firstRequest(start, ep, tv, b.Bytes())
			putBody(b)
		}()
		return
	}
	x := exchange{g: g, w: w, r: r, start: start, endpoint: name, target: target, body: body.Bytes(), openBodies: &openBodies}
	x.serve()
}

// readBody reads the request body into buf; it has BodyTimeout, on the
// gateway's clock, to arrive.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if r.ContentLength > 0 {
		// ReadFrom wants MinRead spare bytes to see EOF without growing.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	rc := http.NewResponseController(w)
	stalled := g.clock.AfterFunc(g.bodyTimeout, func() { rc.SetReadDeadline(aLongTimeAgo) })
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, g.maxBody))
	stalled.Stop()
	if err == nil {
		rc.SetReadDeadline(time.Time{}) // in case the timer fired just now
	}
	return err
}

// exchange is one request on its way through the gateway.
type exchange struct {
	g          *Gateway
	w          http.ResponseWriter
	r          *http.Request
	start      time.Time
	endpoint   string
	target     string
	body       []byte
	openBodies *atomic.Int32
	stream     bool // InvokeEndpointWithResponseStream

	// Set by the last attempt, for the Sample.
	fleet        *fleetTable
	routable     int
	modelLatency time.Duration
	modelStatus  int // the model's answer, 0 until it answers

	// writeTimer cuts a write to the client that takes longer than
	// WriteTimeout; made by the first write.
	writeTimer clock.Timer
}

// write runs f, a write to the client, bounded by WriteTimeout on the
// gateway's clock, and reports whether it succeeded in time.
func (x *exchange) write(f func() bool) bool {
	if x.writeTimer == nil {
		rc := http.NewResponseController(x.w)
		x.writeTimer = x.g.clock.AfterFunc(x.g.writeTimeout, func() { rc.SetWriteDeadline(aLongTimeAgo) })
	} else {
		x.writeTimer.Reset(x.g.writeTimeout)
	}
	ok := f()
	// A timer that fired has cut the write, or will cut the next one: the
	// connection is done either way.
	return x.writeTimer.Stop() && ok
}

// serve routes the request and answers the client. A request the model
// never saw (refused or reset connection) is tried once more, on another
// instance.
func (x *exchange) serve() {
	var failed *instance
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		v, f, in := x.g.acquireOrWait(x.endpoint, x.target, failed, x.r.Context().Done())
		if in == nil {
			break
		}
		x.fleet, x.routable = f, v.routable
		err := x.attempt(v, in)
		if err == nil {
			return
		}
		failed, lastErr = in, err
		x.g.log.Warn("gateway: model unreachable", "endpoint", x.endpoint, "variant", v.name,
			"fleet", f.id, "instance", in.id, "addr", in.addr, "err", err)
	}
	if lastErr == nil {
		x.fail(http.StatusServiceUnavailable, codeServiceUnavailable, false,
			fmt.Sprintf("Endpoint %s has no instance available to take the request. Try again later.", x.endpoint))
		return
	}
	x.fail(http.StatusServiceUnavailable, codeServiceUnavailable, true,
		fmt.Sprintf("The model of endpoint %s could not be reached. Try again later.", x.endpoint))
}

// acquire picks an instance and counts the request on it, picking again
// from the current table if the instance began draining meanwhile.
func (g *Gateway) acquire(endpoint, target string, exclude *instance) (*variantTable, *fleetTable, *instance) {
	for range maxPickAttempts {
		ep := g.table.Load().endpoints[endpoint]
		if ep == nil {
			return nil, nil, nil
		}
		var v *variantTable
		if target != "" {
			if v = ep.variant(target); v == nil {
				return nil, nil, nil
			}
		}
		v, f, in := pick(ep, v, exclude, g.rand)
		if in == nil {
			return nil, nil, nil
		}
		if in.acquire() {
			return v, f, in
		}
	}
	return nil, nil, nil
}

// acquireOrWait acquires an instance as acquire does. For a first attempt
// (nothing to exclude) that finds the endpoint, or its target variant, with
// no instance, it waits for one to come with a new table: up to
// InstanceWait, or until cancel is closed or the Gateway closes.
func (g *Gateway) acquireOrWait(endpoint, target string, exclude *instance, cancel <-chan struct{}) (*variantTable, *fleetTable, *instance) {
	// Loaded before acquire looks, so that a table that brings an
	// instance after that look has replaced this one.
	t := g.table.Load()
	v, f, in := g.acquire(endpoint, target, exclude)
	if in != nil || exclude != nil || g.instanceWait < 0 {
		return v, f, in
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	timer := g.clock.NewTimer(g.instanceWait)
	defer timer.Stop()
	for {
		if t.endpoints[endpoint] == nil {
			return nil, nil, nil // the endpoint was deleted meanwhile
		}
		select {
		case <-t.replaced:
		case <-timer.Chan():
			return nil, nil, nil
		case <-cancel:
			return nil, nil, nil
		case <-g.closed:
			return nil, nil, nil
		}
		t = g.table.Load()
		if v, f, in = g.acquire(endpoint, target, nil); in != nil {
			return v, f, in
		}
	}
}

// attempt sends the request to one instance and, unless the model could not
// be reached, answers the client. It returns an error only for a request
// that may be tried again elsewhere.
func (x *exchange) attempt(v *variantTable, in *instance) error {
	defer in.release()
	g := x.g

	ctx, cancel := context.WithCancelCause(x.r.Context())
	defer cancel(nil)
	timer := g.clock.AfterFunc(g.modelTimeout, func() { cancel(errModelTimeout) })
	defer timer.Stop()

	var tr sendTrace
	sent := g.clock.Now()
	res, err := g.transport.RoundTrip(x.upstreamRequest(tr.context(ctx), in))
	err = tr.classify(err)
	if err != nil && mayResend(err) && tr.reused.Load() && ctx.Err() == nil {
		// A kept-alive connection the model had closed (net/http resends
		// a POST itself only if none of it went out): once more on a
		// fresh connection, as the fast path does.
		tr = sendTrace{}
		res, err = g.freshTransport.RoundTrip(x.upstreamRequest(tr.context(ctx), in))
		err = tr.classify(err)
	}
	x.modelLatency = g.clock.Since(sent)
	if err != nil {
		switch {
		case context.Cause(ctx) == errModelTimeout:
			x.fail(http.StatusFailedDependency, codeModel, true, g.timedOut(v.name))
			return nil
		case x.r.Context().Err() != nil:
			x.record(statusClientClosed, false)
			return nil
		case mayResend(err):
			return err
		}
		// The model may have read the request: it is not sent again.
		x.g.log.Warn("gateway: model failed to answer", "endpoint", x.endpoint, "variant", v.name,
			"instance", in.id, "err", err)
		x.failedToAnswer(v, failureOf(err))
		return nil
	}
	defer res.Body.Close()
	x.modelStatus = res.StatusCode

	if res.StatusCode < 200 || res.StatusCode > 299 {
		x.modelFailed(v, res)
		return nil
	}
	if x.stream {
		x.streamEvents(ctx, v, in, res, timer)
		return nil
	}

	streaming := res.ContentLength < 0 || isEventStream(res.Header)
	var held []byte
	if !streaming && res.ContentLength > 0 {
		// The answer's first bytes are held back with its head, as the
		// fast path's write buffer holds them, so that a model that
		// breaks off early gets the client a ModelError rather than a
		// cut connection.
		bufp := copyPool.Get().(*[]byte)
		defer copyPool.Put(bufp)
		held = (*bufp)[:min(res.ContentLength, holdSize)]
		if err := x.readHeld(res.Body, held, timer); err != nil {
			switch {
			case context.Cause(ctx) == errModelTimeout:
				x.fail(http.StatusFailedDependency, codeModel, true, g.timedOut(v.name))
			case x.r.Context().Err() != nil:
				x.record(statusClientClosed, false)
			default:
				g.log.Warn("gateway: model response cut short", "endpoint", x.endpoint, "variant", v.name,
					"instance", in.id, "err", err)
				x.failedToAnswer(v, cutShort)
			}
			return nil
		}
	}

	h := x.w.Header()
	if ct, ok := res.Header[hContentType]; ok {
		h[hContentType] = ct
	} else {
		// Present but nil: the server must not sniff a type the model did
		// not give.
		h[hContentType] = nil
	}
	if ca, ok := res.Header[hCustomAttributes]; ok {
		h[hCustomAttributes] = ca
	}
	h[hInvokedVariant] = v.header
	setSecurityHeaders(h)
	if !streaming {
		h[hContentLength] = []string{strconv.FormatInt(res.ContentLength, 10)}
	}
	x.w.WriteHeader(http.StatusOK)
	var rc *http.ResponseController
	if streaming {
		// A stream's client learns at once that it was accepted, even if
		// the model's first event is a while coming.
		rc = http.NewResponseController(x.w)
		rc.Flush()
	}
	if len(held) > 0 {
		if !x.write(func() bool { _, err := x.w.Write(held); return err == nil }) {
			x.record(statusClientClosed, false)
			return nil
		}
	}

	if rerr := x.pump(v, in, res, timer, func(b []byte) bool {
		return x.write(func() bool {
			if _, err := x.w.Write(b); err != nil {
				return false
			}
			if rc != nil {
				return rc.Flush() == nil
			}
			return true
		})
	}); rerr != nil {
		abort(x.w)
	}
	return nil
}

// pump passes the model's body on as it comes, each read to send, giving
// the model another ModelTimeout after each, and records the request. It
// returns the error of a read that broke the body off, after which the
// caller tells the client.
func (x *exchange) pump(v *variantTable, in *instance, res *http.Response, timer clock.Timer, send func([]byte) bool) error {
	bufp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bufp)
	buf := *bufp
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			timer.Reset(x.g.modelTimeout)
			if !send(buf[:n]) {
				x.record(statusClientClosed, false)
				return nil
			}
		}
		switch {
		case rerr == io.EOF:
			x.record(http.StatusOK, false)
			return nil
		case rerr == nil:
		case x.r.Context().Err() != nil:
			x.record(statusClientClosed, false)
			return nil
		default:
			x.g.log.Warn("gateway: model response cut short", "endpoint", x.endpoint, "variant", v.name,
				"instance", in.id, "err", rerr)
			// The client's connection is cut (or, in an event stream, told
			// of the failure): a model error, as a 424 would be.
			x.modelStatus = 0
			x.record(http.StatusFailedDependency, true)
			return rerr
		}
	}
}

// holdSize is how much of a sized answer the net/http path reads before
// it sends the head, about what the fast path's write buffer holds.
const holdSize = 4 << 10

// readHeld fills held from the model's body, giving the model another
// ModelTimeout after each read.
func (x *exchange) readHeld(body io.Reader, held []byte, timer clock.Timer) error {
	for n := 0; n < len(held); {
		k, err := body.Read(held[n:])
		n += k
		if k > 0 {
			timer.Reset(x.g.modelTimeout)
		}
		if err == io.EOF && n < len(held) {
			return io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// streamEvents answers InvokeEndpointWithResponseStream: the model's body,
// as it comes, in PayloadPart events of the AWS event stream encoding, and
// a ModelStreamError event if the answer breaks off or times out.
func (x *exchange) streamEvents(ctx context.Context, v *variantTable, in *instance, res *http.Response, timer clock.Timer) {
	h := x.w.Header()
	h[hContentType] = []string{"application/vnd.amazon.eventstream"}
	if ct, ok := res.Header[hContentType]; ok {
		h[hStreamContentType] = ct
	}
	if ca, ok := res.Header[hCustomAttributes]; ok {
		h[hCustomAttributes] = ca
	}
	h[hInvokedVariant] = v.header
	setSecurityHeaders(h)
	x.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(x.w)
	rc.Flush()

	enc := eventstream.NewEncoder()
	send := func(msg eventstream.Message) bool {
		return x.write(func() bool {
			if err := enc.Encode(x.w, msg); err != nil {
				return false
			}
			return rc.Flush() == nil
		})
	}
	part := streamMessage("event", ":event-type", "PayloadPart", "application/octet-stream")
	rerr := x.pump(v, in, res, timer, func(b []byte) bool {
		part.Payload = b
		return send(part)
	})
	if rerr == nil {
		return
	}
	// The runtime's error codes for a stream that broke off.
	code, message := "StreamBroken", fmt.Sprintf("The response of the model of variant %s was cut short: %v", v.name, rerr)
	if context.Cause(ctx) == errModelTimeout {
		code, message = "ModelInvocationTimeExceeded", x.g.timedOut(v.name)
	}
	failure := streamMessage("exception", ":exception-type", "ModelStreamError", "application/json")
	failure.Payload, _ = json.Marshal(struct{ Message, ErrorCode string }{message, code})
	send(failure)
}

// streamMessage is an event stream message with its headers: of
// messageType, whose kind (typeHeader) is name, with a payload of
// contentType.
func streamMessage(messageType, typeHeader, name, contentType string) eventstream.Message {
	var msg eventstream.Message
	msg.Headers.Set(":message-type", eventstream.StringValue(messageType))
	msg.Headers.Set(typeHeader, eventstream.StringValue(name))
	msg.Headers.Set(":content-type", eventstream.StringValue(contentType))
	return msg
}

// abort cuts the client's connection. The client has the status line
// already, so this is the only way left to tell it that the body is
// incomplete: ending the handler normally would end a chunked body with its
// terminating chunk, and it would look whole.
func abort(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
		return
	}
	// HTTP/2 cannot hand the connection over; this sentinel, which the
	// server recovers, resets the stream instead.
	panic(http.ErrAbortHandler)
}

func (x *exchange) upstreamRequest(ctx context.Context, in *instance) *http.Request {
	h := make(http.Header, 4)
	rh := x.r.Header
	for _, k := range [...]string{hContentType, hAccept, hCustomAttributes, hInferenceID} {
		if v, ok := rh[k]; ok {
			h[k] = v
		}
	}
	req := &http.Request{
		Method:     http.MethodPost,
		URL:        in.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       in.addr,
	}
	if len(x.body) == 0 {
		req.Body = http.NoBody
	} else {
		req.ContentLength = int64(len(x.body))
		req.Body = newUpstreamBody(x.body, x.openBodies)
		// Lets the transport resend on a fresh connection when a kept-alive
		// one turns out to have been closed by the model.
		req.GetBody = func() (io.ReadCloser, error) { return newUpstreamBody(x.body, x.openBodies), nil }
	}
	return req.WithContext(ctx)
}

// failedToAnswer answers 424 ModelError for a model that gave no usable
// answer (how says why) and records it as a model error.
func (x *exchange) failedToAnswer(v *variantTable, how string) {
	x.modelStatus = 0
	e := x.g.failedToAnswer(v.name, x.endpoint, how)
	x.w.Header()[hInvokedVariant] = v.header
	writeErrorBody(x.w, http.StatusFailedDependency, e)
	x.record(http.StatusFailedDependency, true)
}

// modelFailed answers 424 ModelError for a model that answered non-2xx.
func (x *exchange) modelFailed(v *variantTable, res *http.Response) {
	msg, _ := io.ReadAll(io.LimitReader(res.Body, maxOriginalMessage))
	io.CopyN(io.Discard, res.Body, maxDrain)
	e := x.g.modelError(res.StatusCode, v.name, x.endpoint, msg)
	x.w.Header()[hInvokedVariant] = v.header
	writeErrorBody(x.w, http.StatusFailedDependency, e)
	x.record(http.StatusFailedDependency, true)
}

// modelError is the ModelError for a model that answered status with body
// msg (its first maxOriginalMessage bytes).
func (g *Gateway) modelError(status int, variant, endpoint string, msg []byte) errorBody {
	kind := "server"
	if status < 500 {
		kind = "client"
	}
	original := strings.ToValidUTF8(string(msg), "\uFFFD")
	return errorBody{
		Type: codeModel,
		Message: fmt.Sprintf("Received %s error (%d) from the model of variant %s with message %q. See the logs of endpoint %s%s for more information.",
			kind, status, variant, original, endpoint, g.where()),
		OriginalStatusCode: status,
		OriginalMessage:    original,
	}
}

// fail answers the client with an error and records it.
func (x *exchange) fail(status int, code string, modelError bool, message string) {
	writeError(x.w, status, code, message)
	x.record(status, modelError)
}

// statusClientClosed is recorded for a request whose client went away
// before it got an answer.
const statusClientClosed = 499

func (x *exchange) record(status int, modelError bool) {
	x.g.record(x.fleet, x.routable, x.start, x.modelLatency, x.modelStatus, status, modelError)
}

// record reports a request that started at start to the fleet's Recorder.
func (g *Gateway) record(f *fleetTable, routable int, start time.Time, modelLatency time.Duration, modelStatus, status int, modelError bool) {
	if f == nil || f.recorder == nil {
		return
	}
	now := g.clock.Now()
	overhead := now.Sub(start) - modelLatency
	if overhead < 0 {
		overhead = 0
	}
	f.recorder.Record(Sample{
		Status:          status,
		ModelStatus:     modelStatus,
		ModelError:      modelError,
		ModelLatency:    modelLatency,
		OverheadLatency: overhead,
		Instances:       routable,
		Time:            now,
	})
}

func isEventStream(h http.Header) bool {
	ct, _ := headerValue(h, hContentType)
	return strings.HasPrefix(ct, "text/event-stream")
}

func (g *Gateway) notFound(endpoint string) string {
	return fmt.Sprintf("Endpoint %s of account %s not found.", endpoint, g.account)
}

func (g *Gateway) variantNotFound(endpoint, variant string) string {
	return fmt.Sprintf("Target variant %s not found for Endpoint %s of account %s.", variant, endpoint, g.account)
}

func (g *Gateway) tooLarge() string {
	return fmt.Sprintf("Request body is larger than the limit of %d bytes.", g.maxBody)
}

func (g *Gateway) timedOut(variant string) string {
	return fmt.Sprintf("Your invocation timed out after %s while waiting for a response from the model of variant %s.",
		g.modelTimeout, variant)
}

func (g *Gateway) where() string {
	if g.region == "" {
		return " in account " + g.account
	}
	return " in account " + g.account + " (region " + g.region + ")"
}

// requestID returns a random UUID (version 4), SageMaker's request ID form.
func (g *Gateway) requestID() string {
	var s [36]byte
	return string(g.appendRequestID(s[:0]))
}

// appendRequestID appends a random UUID (version 4) to b.
func (g *Gateway) appendRequestID(b []byte) []byte {
	const hex = "0123456789abcdef"
	var u [16]byte
	r0, r1 := g.rand(), g.rand()
	for i := range 8 {
		u[i] = byte(r0 >> (8 * i))
		u[8+i] = byte(r1 >> (8 * i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[c>>4], hex[c&0x0f])
	}
	return b
}

// eofReader tells whether its reader was read to the end: a refused
// request whose body Authorize did not read is answered without reading it.
type eofReader struct {
	io.ReadCloser
	eof bool
}

func (r *eofReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err == io.EOF {
		r.eof = true
	}
	return n, err
}

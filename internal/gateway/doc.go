// Package gateway is Kiln's data plane: it serves the SageMaker Runtime API's
// POST /endpoints/{EndpointName}/invocations (InvokeEndpoint) and
// /invocations-response-stream (InvokeEndpointWithResponseStream, whose
// answer goes out in AWS event stream messages) and proxies each request to
// one model instance.
//
// Routing reads an immutable Table that Update (and Drain) replace with one
// atomic swap, so the request path takes no lock. A request picks a variant
// (by weight, or the one the X-Amzn-SageMaker-Target-Variant header names),
// then one of the variant's fleets by its blue/green share, renormalised over
// the fleets that have an instance to take it, then the instance with the
// fewest requests in flight. Those counts belong to per-instance state that
// survives table swaps, and Drain uses them to retire an instance without
// losing a request: it takes the instance out of the table and waits for
// what is in flight there to finish.
//
// The request body is read whole (up to MaxBody) into a pooled buffer, so a
// request the model cannot have received (its instance refused the
// connection, or the kept-alive connection had been closed) is sent once
// more; a request a model may have received is never sent again
// (resend.go), and a model that fails to answer it is a ModelError. Connections to models are kept alive and reused. The model's
// answer is streamed back as it arrives; chunked and text/event-stream
// responses are flushed after every read, so server-sent events pass through.
//
// ServeHTTP takes the HTTP/1.1 connection of an invocation over from
// net/http (fast.go): it answers that invocation and the connection's next
// ones itself, parsing each head in place in its read buffer and sending it
// to the model over a pooled connection of its own (upstream.go), with no
// allocation and about as many system calls as nginx. A request it does not
// handle in the simplest way goes back, unread, to an http.Server serving
// Config.Fallback. Config.NetHTTPOnly keeps everything on net/http, and
// Config.Authorize checks every request on either path.
// Errors take the runtime API's JSON shape, {"__type": ..., "message": ...}
// with X-Amzn-ErrorType, and a model's own failure becomes a 424 ModelError
// carrying its status and body. Every answer carries nosniff and a
// sandboxing Content-Security-Policy (security.go).
//
// Each request is reported as a Sample to the Recorder of the fleet that
// answered it; the server adapts the metrics store to Recorder, so this
// package imports neither metrics nor fleets.
package gateway

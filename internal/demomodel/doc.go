// Package demomodel is the demo model that ships with Kiln, run as
// `kiln demo-model`.
//
// It is a real, small model behind the inference container contract: a
// logistic regression that answers GET /ping and POST /invocations on
// 127.0.0.1, so an endpoint can be created, invoked and deployed with the
// `process` runtime without building a container. It also carries fault
// knobs (injected errors, latency, a health check that never passes, a slow
// start, a crash after N invocations) so that deployment guardrails — alarms,
// bakes, rollbacks, startup timeouts — can be exercised on purpose.
//
// # Endpoints
//
// GET /ping answers 200 with an empty body once the model is listening (503
// forever with KILN_DEMO_NEVER_HEALTHY=1).
//
// POST /invocations scores rows of features. The body (at most 6 MiB) is one of:
//
//	Content-Type: application/json   {"instances": [[0.5, 1, 2, 0], [1, 0, 0, 1]]}
//	Content-Type: application/json   [[0.5, 1, 2, 0], [1, 0, 0, 1]]
//	Content-Type: application/json   [0.5, 1, 2, 0]            (one row)
//	Content-Type: text/csv           0.5,1,2,0\n1,0,0,1
//
// A request without a Content-Type is read as JSON. The answer is
//
//	{"predictions": [{"score": 0.73, "label": "pos"}, ...],
//	 "model_version": "v1", "instance": "<KILN_INSTANCE_ID>"}
//
// with the header X-Kiln-Demo-Version: v1 (set on every response). The score
// is sigmoid(weights·row + bias); the label is the second label when the score
// is at least 0.5, the first otherwise.
//
// With Accept: text/event-stream the answer is a stream of server-sent events,
// one `data: {"index":0,"score":...,"label":...,"model_version":...,"instance":...}`
// event per row, each flushed as soon as it is produced, with
// KILN_DEMO_STREAM_DELAY_MS between events.
//
// Requests the model cannot read — bad JSON, a row with the wrong number of
// features, a value that is not a finite number, an unsupported content type —
// are answered 400 (413 for a body over 6 MiB) with a JSON body
// {"error": "<kind>", "message": "<what is wrong>", ...}. Through Kiln's
// runtime API they surface as ModelError.
//
// # Model data
//
// KILN_MODEL_DATA_URL (the model's ModelDataUrl) names a JSON file
//
//	{"weights": [0.8, -0.4, 1.2, -0.6], "bias": -0.1, "labels": ["neg", "pos"]}
//
// as a file:// URL, a plain path, or an http:// or https:// URL. "labels" is
// optional ("neg" and "pos" when absent) and unknown fields are rejected, so a
// misspelt field is an error rather than a silently empty model. Without
// KILN_MODEL_DATA_URL the built-in model above (4 features) is served.
//
// # Environment
//
// Everything is read once at start; a bad value stops the model before it
// listens, with an error naming the variable.
//
//	SAGEMAKER_BIND_TO_PORT        port to listen on, on 127.0.0.1
//	PORT                          used when SAGEMAKER_BIND_TO_PORT is unset; default 8080
//	KILN_MODEL_DATA_URL           model weights, see above; default: the built-in model
//	KILN_INSTANCE_ID              echoed as "instance" in every answer
//	KILN_DEMO_VERSION             echoed as "model_version" and X-Kiln-Demo-Version; default v1
//	KILN_DEMO_ERROR_RATE          fraction 0..1 of invocations answered with an injected error; default 0
//	KILN_DEMO_ERROR_STATUS        HTTP status of injected errors, 400..599; default 500
//	KILN_DEMO_LATENCY_MS          latency added to every invocation, milliseconds, may be fractional; default 0
//	KILN_DEMO_LATENCY_JITTER_MS   extra latency drawn uniformly from 0..J milliseconds; default 0
//	KILN_DEMO_NEVER_HEALTHY       1/true: /ping answers 503 forever, invocations are still served
//	KILN_DEMO_STARTUP_DELAY_MS    wait this long before listening; default 0
//	KILN_DEMO_CRASH_AFTER         exit with status 1 right after answering the Nth invocation; 0 (default) = never
//	KILN_DEMO_STREAM_DELAY_MS     pause between server-sent events; default 0
//	KILN_DEMO_SEED                seed (unsigned integer) of the random source behind the error rate and
//	                              the jitter; default: from the clock. The seed in use is logged at start.
//
// Durations accept at most 24 hours. Latency applies to every invocation,
// including those answered with an injected error; an invocation counts
// towards KILN_DEMO_CRASH_AFTER whatever its outcome, and invocations that
// arrive after the crashing one have their connection dropped.
//
// # Running
//
// Main runs the model until its context is cancelled (SIGTERM), then stops
// accepting connections, lets requests in flight finish and returns nil. It
// logs one line to stderr when it starts listening and one when it stops.
// When KILN_DEMO_CRASH_AFTER fires it drops every connection and returns an
// error wrapping ErrCrashed, which the command turns into exit status 1.
//
// NewHandler serves the same HTTP API from a Config without listening, for
// tests that want a model in process.
package demomodel

// Package api holds what Kiln's HTTP APIs share: authentication (SigV4
// signatures, tokens, the dashboard's sessions), roles and permissions, the
// failure limiter, the browser guard, the dispatcher that serves the
// AWS-compatible APIs on one URL and writes their errors before dispatch,
// and the JSON bodies and errors of Kiln's own routes. Each protocol is a
// subpackage: native (/v1), client (its Go client), sagemaker and cloudwatch.
package api

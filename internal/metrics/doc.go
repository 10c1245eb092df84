// Package metrics is Kiln's metrics store: the gateway records every
// invocation into it, and the alarm engine, the CloudWatch-style APIs and
// `kiln metrics` query it.
package metrics

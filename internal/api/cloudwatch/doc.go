// Package cloudwatch serves the part of Amazon CloudWatch's API that Kiln
// implements (alarms, metric statistics and data, tags) in the three
// protocols AWS clients speak: rpc-v2-cbor, awsJson1.0 and awsQuery. A
// request decodes into one tree of members (wire.go) that the operations
// read (alarms.go, metrics.go, tags.go); results are encoded in the protocol
// the request came in (cbor.go, json.go, query.go).
package cloudwatch

// Package kiln holds Kiln's domain: models, endpoint configs, endpoints and
// their fleets, deployment configs, deployments and alarms, with the rules
// that make them valid. It imports only the standard library; storage,
// HTTP, processes and time live in the internal packages, which meet here.
//
// The field names follow SageMaker's and CloudWatch's APIs, so that a record
// reads the same through the native API, the AWS SDKs and `kiln apply` files.
package kiln

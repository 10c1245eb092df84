// Package api holds Kiln's HTTP control-plane APIs: the native JSON API under
// /v1 (and its Go client, used by the CLI), with the SageMaker and CloudWatch
// wire protocols beside it. Every handler decodes a request, makes one call
// on kiln.Service, and encodes the answer; the rules live behind Service.
package api

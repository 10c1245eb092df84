// Package sagemaker serves the part of Amazon SageMaker's control-plane API
// that Kiln implements, in its awsJson1.1 protocol, so that the AWS SDKs and
// CLIs manage models, endpoint configs and endpoints: each operation is one
// call on kiln.Service. api.AWSHandler verifies SigV4 in front of it.
package sagemaker

package cloudwatch

import (
	"net/http"

	"github.com/kiln-serve/kiln/internal/api"
)

// AWSHandler writes authentication failures of CloudWatch requests through
// the CloudWatch handler, so that they have the shape of the request's
// protocol.
var _ api.AuthErrorWriter = (*API)(nil)

// WriteAuthError writes an authentication failure in the error shape of the
// request's protocol, so that AWS clients report its code.
func (c *API) WriteAuthError(w http.ResponseWriter, r *http.Request, e *api.AuthError) {
	proto := protocolOf(r)
	reqID := startResponse(w, proto)
	code := e.QueryCode
	if code == "" {
		code = e.Code
	}
	writeError(w, proto, reqID, &apiError{status: e.Status, code: code, shape: e.Code, msg: e.Message})
}

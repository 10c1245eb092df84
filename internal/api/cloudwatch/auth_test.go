package cloudwatch

import (
	"net/http/httptest"
	"testing"

	"github.com/kiln-serve/kiln/internal/api"
)

func TestCloudWatchAuthError(t *testing.T) {
	cw := &API{}
	r := httptest.NewRequest("POST", cborPrefix+"DescribeAlarms", nil)
	w := httptest.NewRecorder()
	cw.WriteAuthError(w, r, &api.AuthError{Status: 403, Code: "InvalidSignatureException", QueryCode: "SignatureDoesNotMatch", Message: "bad signature"})
	if w.Code != 403 || w.Header().Get("X-Amzn-Query-Error") != "SignatureDoesNotMatch;Sender" || w.Header().Get("Smithy-Protocol") != "rpc-v2-cbor" {
		t.Fatalf("auth error: %d %v", w.Code, w.Header())
	}
}

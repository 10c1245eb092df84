package gateway

import (
	"net/http"
	"testing"

	"github.com/kiln-serve/kiln/internal/api"
)

// BenchmarkFastPathGuard is BenchmarkFastPathGateway with kiln serve's
// browser guard (api.Guard) on every request, as Config.Authorize: the
// check of the Host header and of the headers only browsers send, which
// kiln serve makes on every invocation in every mode.
func BenchmarkFastPathGuard(b *testing.B) {
	guard, err := api.NewGuard(api.GuardConfig{Addr: "127.0.0.1:8080", AllowedHosts: []string{"kiln"}})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Authorize: func(r *http.Request) *Refusal {
		if ref := guard.Check(r); ref != nil {
			return &Refusal{Status: ref.Status, Code: ref.AWSCode, Message: ref.Message}
		}
		return nil
	}}
	benchFastPath(b, cfg, "")
}

package server

import (
	"net/http"

	"github.com/kiln-serve/kiln/internal/gateway"
)

// guardInvocations puts the browser guard (api.Guard) in front of the
// gateway's own check, next. The mux's requests pass the guard before they
// reach the gateway, but the invocations on a connection the gateway took
// over from net/http never reach the mux: Config.Authorize is what sees
// them.
func (s *Server) guardInvocations(next func(*http.Request) *gateway.Refusal) func(*http.Request) *gateway.Refusal {
	return func(r *http.Request) *gateway.Refusal {
		if ref := s.guard.Check(r); ref != nil {
			return &gateway.Refusal{Status: ref.Status, Code: ref.AWSCode, Message: ref.Message}
		}
		if next != nil {
			return next(r)
		}
		return nil
	}
}

package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/kiln-serve/kiln/internal/api"
	"github.com/kiln-serve/kiln/internal/gateway"
	"github.com/kiln-serve/kiln/internal/ui"
)

// newAuth builds the authentication of every API from cfg.
func newAuth(cfg Config) *api.Auth {
	return &api.Auth{
		Creds:         cfg.Credentials,
		Limiter:       &api.FailureLimiter{Burst: cfg.AuthFailureBurst, Every: cfg.AuthFailureEvery, Clock: cfg.Clock},
		SessionCookie: ui.CookieName,
	}
}

// checkTransport refuses what would send credentials in the clear: with
// credentials and without TLS, Kiln listens beyond loopback only with
// InsecureHTTP (a TLS-terminating proxy in front, say). It loads the
// certificate, so that a bad one stops Kiln at once.
func checkTransport(cfg *Config) (*tls.Config, error) {
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", cfg.TLSCertFile, cfg.TLSKeyFile, err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	}
	if cfg.Credentials.Empty() || cfg.InsecureHTTP || checkListenAddr(cfg.Addr) == nil {
		return nil, nil
	}
	return nil, fmt.Errorf("refusing to serve plain HTTP on %s: tokens, dashboard sessions and every request and answer would cross the network in the clear; "+
		"give --tls-cert and --tls-key, listen on a loopback address, or pass --insecure-http if a TLS-terminating proxy is in front", cfg.Addr)
}

// authInvoke is the gateway's check of invocations under --invoke-auth:
// the SDKs sign them, curl may send a token; the key's role must allow
// invocations. A refusal has the runtime's shape and status.
func (s *Server) authInvoke(r *http.Request) *gateway.Refusal {
	p, err := s.auth.Authenticate(r)
	if err != nil {
		// SageMaker Runtime answers 403 to any authentication failure.
		status := http.StatusForbidden
		if err.Status == http.StatusTooManyRequests {
			status = err.Status
		}
		return &gateway.Refusal{Status: status, Code: err.RuntimeCode(), Message: err.Message}
	}
	if !p.Role.Allows(api.PermInvoke) {
		return &gateway.Refusal{Status: http.StatusForbidden, Code: "AccessDeniedException",
			Message: fmt.Sprintf("User: %s (role %s) is not authorized to perform: sagemaker:InvokeEndpoint; it needs a key whose kiln_role grants invoke.", p.AccessKeyID, p.Role)}
	}
	return nil
}

// native guards a native API handler: authentication, then the role.
func (s *Server) native(h http.Handler) http.Handler {
	return s.auth.RequireNative(h, api.NativePermission)
}

// metricsAuth guards /metrics with the read role when credentials are set,
// unless the operator opened it.
func (s *Server) metricsAuth(h http.Handler) http.Handler {
	if s.cfg.OpenMetrics {
		return h
	}
	return s.auth.RequireNative(h, func(*http.Request) api.Permission { return api.PermRead })
}

// sessions are the dashboard's sign-in hooks over the access keys; nil
// without credentials.
func (s *Server) sessions() *ui.Sessions {
	if !s.auth.Enabled() {
		return nil
	}
	return &ui.Sessions{
		Login: func(r *http.Request, id, secret, token string) (string, time.Time, error) {
			tok, p, exp, err := s.auth.Login(r, id, secret, token)
			if err != nil {
				return "", time.Time{}, err
			}
			if !p.Role.Allows(api.PermRead) {
				return "", time.Time{}, fmt.Errorf("the key %s has role %s, which cannot view the dashboard (it needs read, deploy or admin)", p.AccessKeyID, p.Role)
			}
			return tok, exp, nil
		},
		Check: func(r *http.Request, session string) error {
			p, _, err := s.auth.VerifySession(r, session)
			if err != nil {
				return err
			}
			if !p.Role.Allows(api.PermRead) {
				return fmt.Errorf("the key %s has role %s, which cannot view the dashboard (it needs read)", p.AccessKeyID, p.Role)
			}
			return nil
		},
		Logout: s.auth.Revoke,
	}
}

// serve serves httpSrv on ln, over TLS when it is configured (with HTTP/2,
// which net/http offers through ALPN).
func (s *Server) serve(httpSrv *http.Server, ln net.Listener) error {
	if s.tls == nil {
		return httpSrv.Serve(ln)
	}
	httpSrv.TLSConfig = s.tls.Clone()
	return httpSrv.ServeTLS(ln, "", "")
}

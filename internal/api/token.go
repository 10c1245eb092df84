package api

import (
	"crypto/hmac"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Tokens are short-lived bearer credentials derived from an access key, for
// curl, scripts, Prometheus and the dashboard's session cookie: whoever
// holds one can act with its role until it expires, but cannot learn the
// secret from it or make it last longer.
//
//	kiln1.<access key ID>.<role>.<expiry, Unix seconds>.<MAC>
//
// The MAC is HMAC-SHA256, under a key derived from the secret access key,
// of the version, the access key ID, the role and the expiry; it is
// base64url without padding. Verification is stateless: the server needs
// only the credentials, so a token minted by one replica is good on every
// replica with the same credentials file, and survives restarts. A token
// is revoked by changing or removing its key's secret, or by lowering the
// key's role below the token's; a dashboard session is also revoked on the
// replica where it signs out (see Auth.Revoke).
const tokenPrefix = "kiln1."

// Token lifetimes.
const (
	// DefaultTokenTTL is the lifetime of a token minted without one.
	DefaultTokenTTL = time.Hour
	// MaxTokenTTL is the longest lifetime a token may have.
	MaxTokenTTL = 7 * 24 * time.Hour
	// SessionTTL is the lifetime of a dashboard session.
	SessionTTL = 12 * time.Hour
)

// tokenKey derives the key that signs an access key's tokens. It is not
// the secret, nor SigV4's signing key, so a token's MAC is useless for
// anything else.
func tokenKey(secret string) []byte {
	return hmacSHA256([]byte("KILN1"+secret), "kiln token key")
}

func tokenMAC(key []byte, id string, role Role, expiry int64) string {
	msg := "kiln1\n" + id + "\n" + string(role) + "\n" + strconv.FormatInt(expiry, 10)
	return base64.RawURLEncoding.EncodeToString(hmacSHA256(key, msg))
}

// IsToken reports whether s has the form of a Kiln token (not whether it
// is valid).
func IsToken(s string) bool { return strings.HasPrefix(s, tokenPrefix) }

// MintToken returns a token for the access key id with role, valid until
// expiry. The role must be one the key has, or narrower.
func (a *Auth) MintToken(id string, role Role, expiry time.Time) (string, error) {
	k, ok := a.Creds.key(id)
	if !ok {
		return "", fmt.Errorf("no access key %s", id)
	}
	if !k.role.Includes(role) {
		return "", fmt.Errorf("the key %s has role %s, which does not include %s", id, k.role, role)
	}
	exp := expiry.Unix()
	return tokenPrefix + id + "." + string(role) + "." + strconv.FormatInt(exp, 10) + "." + tokenMAC(k.tokenKey, id, role, exp), nil
}

// verifyToken checks a kiln1 token and returns its principal.
func (a *Auth) verifyToken(tok string) (Principal, time.Time, *AuthError) {
	invalid := func(why string) (Principal, time.Time, *AuthError) {
		return Principal{}, time.Time{}, &AuthError{Status: http.StatusUnauthorized, Code: "UnrecognizedClientException", QueryCode: "InvalidClientTokenId",
			Message: "The token is not valid: " + why + ". Get a new one with `kiln token`, or sign in again."}
	}
	rest := strings.TrimPrefix(tok, tokenPrefix)
	// The access key ID may hold dots; the other fields cannot.
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return invalid("it is malformed")
	}
	rest, mac := rest[:i], rest[i+1:]
	i = strings.LastIndexByte(rest, '.')
	if i < 0 {
		return invalid("it is malformed")
	}
	rest, expStr := rest[:i], rest[i+1:]
	i = strings.LastIndexByte(rest, '.')
	if i < 0 {
		return invalid("it is malformed")
	}
	id, roleStr := rest[:i], rest[i+1:]
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil {
		return invalid("it is malformed")
	}
	role, err := ParseRole(roleStr)
	if err != nil || string(role) != roleStr {
		return invalid("it is malformed")
	}
	k, ok := a.Creds.key(id)
	if !ok {
		return invalid("its access key is not one this server accepts")
	}
	if !hmac.Equal([]byte(mac), []byte(tokenMAC(k.tokenKey, id, role, exp))) {
		return invalid("its signature does not match (was the key's secret changed?)")
	}
	expiry := time.Unix(exp, 0)
	now := a.now()
	if !now.Before(expiry) {
		return Principal{}, time.Time{}, &AuthError{Status: http.StatusUnauthorized, Code: "ExpiredTokenException", QueryCode: "ExpiredToken",
			Message: fmt.Sprintf("The token expired at %s. Get a new one with `kiln token`, or sign in again.", expiry.UTC().Format(time.RFC3339))}
	}
	if !k.role.Includes(role) {
		return invalid(fmt.Sprintf("its role %s is wider than the key's role %s", role, k.role))
	}
	if a.revoked(mac, now) {
		return invalid("it was signed out")
	}
	return Principal{AccessKeyID: id, Role: role, Via: "token"}, expiry, nil
}

// Revoke makes a token invalid on this server until it expires: signing
// out of the dashboard does it to the session's token. Other replicas
// still accept it until it expires.
func (a *Auth) Revoke(tok string) {
	if !IsToken(tok) {
		return
	}
	_, expiry, err := a.verifyToken(tok)
	if err != nil {
		return
	}
	mac := tok[strings.LastIndexByte(tok, '.')+1:]
	now := a.now()
	a.revokedMu.Lock()
	defer a.revokedMu.Unlock()
	if a.revokedSet == nil {
		a.revokedSet = map[string]time.Time{}
	}
	for m, exp := range a.revokedSet {
		if !now.Before(exp) {
			delete(a.revokedSet, m)
		}
	}
	a.revokedSet[mac] = expiry
}

func (a *Auth) revoked(mac string, now time.Time) bool {
	a.revokedMu.Lock()
	defer a.revokedMu.Unlock()
	exp, ok := a.revokedSet[mac]
	return ok && now.Before(exp)
}

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	// TTLSeconds is the token's lifetime; 0 means DefaultTokenTTL.
	TTLSeconds int64 `json:"TTLSeconds,omitempty"`
	// Role is the token's role; "" means the key's own.
	Role string `json:"Role,omitempty"`
}

// TokenResponse is the answer of POST /v1/tokens.
type TokenResponse struct {
	Token       string    `json:"Token"`
	AccessKeyID string    `json:"AccessKeyId"`
	Role        Role      `json:"Role"`
	Expiration  time.Time `json:"Expiration"`
}

// TokenHandler serves POST /v1/tokens: a request signed with SigV4 gets a
// token of its key, with the role and lifetime asked for. Tokens cannot
// mint tokens, so that a stolen one cannot be made to outlive its expiry.
// Mount it behind RequireNative.
func (a *Auth) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Enabled() {
			WriteJSON(w, http.StatusBadRequest, ErrorBody{Code: "InvalidArgument", Message: "This server has no credentials, so it has no tokens either: it authenticates nobody."})
			return
		}
		p, _ := PrincipalOf(r.Context())
		if p.Via != "sigv4" {
			WriteJSON(w, http.StatusForbidden, ErrorBody{Code: "forbidden", Message: "Tokens are minted only for requests signed with the access key (SigV4), not for a token or a session: run `kiln token` with --access-key-id and --secret-access-key."})
			return
		}
		var in TokenRequest
		if err := ReadJSON(r, &in); err != nil {
			WriteJSON(w, http.StatusBadRequest, ErrorBody{Code: "InvalidArgument", Message: err.Error()})
			return
		}
		ttl := DefaultTokenTTL
		if in.TTLSeconds != 0 {
			if in.TTLSeconds < 1 || in.TTLSeconds > int64(MaxTokenTTL/time.Second) {
				WriteJSON(w, http.StatusBadRequest, ErrorBody{Code: "InvalidArgument", Message: fmt.Sprintf("TTLSeconds %d: want 1 to %d (%s).", in.TTLSeconds, int64(MaxTokenTTL/time.Second), MaxTokenTTL)})
				return
			}
			ttl = time.Duration(in.TTLSeconds) * time.Second
		}
		role := p.Role
		if in.Role != "" {
			var err error
			if role, err = ParseRole(in.Role); err != nil {
				WriteJSON(w, http.StatusBadRequest, ErrorBody{Code: "InvalidArgument", Message: "Role: " + err.Error()})
				return
			}
		}
		if !p.Role.Includes(role) {
			WriteJSON(w, http.StatusForbidden, ErrorBody{Code: "forbidden", Message: fmt.Sprintf("The key %s has role %s; it cannot have a token of role %s.", p.AccessKeyID, p.Role, role)})
			return
		}
		expiry := a.now().Add(ttl).Truncate(time.Second)
		tok, err := a.MintToken(p.AccessKeyID, role, expiry)
		if err != nil {
			WriteJSON(w, http.StatusForbidden, ErrorBody{Code: "forbidden", Message: err.Error()})
			return
		}
		WriteJSON(w, http.StatusOK, TokenResponse{Token: tok, AccessKeyID: p.AccessKeyID, Role: role, Expiration: expiry.UTC()})
	})
}

package api

import (
	"bufio"
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kiln-serve/kiln/internal/clock"
)

// MinSecretLength is the shortest secret access key Kiln accepts. A
// secret signs requests to an API that can start processes on the host,
// so it must not be guessable.
const MinSecretLength = 16

// Credentials are the access keys Kiln accepts: each access key ID with its
// secret access key and role. The zero value and nil hold none.
type Credentials struct {
	keys map[string]accessKey // by access key ID
}

type accessKey struct {
	secret   string
	role     Role
	tokenKey []byte // see tokenKey, derived once
}

// LoadCredentials reads the access keys from the credentials file at path
// (none if path is "") and from the environment variables
// KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY, read through getenv (none
// if getenv is nil), with its role from KILN_ROLE. Every key found is
// accepted.
//
// The file has the format of the AWS CLI's ~/.aws/credentials: sections
// (profiles) of key = value lines, each with aws_access_key_id and
// aws_secret_access_key. Profile names mean nothing to Kiln; other keys
// (region, output, ...) are ignored, and the AWS CLI ignores kiln_role, so
// one file serves both. Lines starting with # or ; are comments. kiln_role
// is the key's role (admin, deploy, read or invoke); without it the key is
// an admin (DefaultRole).
//
//	# /etc/kiln/credentials
//	[deployer]
//	aws_access_key_id = KILNDEPLOYER01
//	aws_secret_access_key = 3f8a1c9e0b7d45e2a6c4d1f0e9b8a7c6
//	kiln_role = deploy
//
//	[grafana]
//	aws_access_key_id = KILNREAD02
//	aws_secret_access_key = 0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a
//	kiln_role = read
//
// Access key IDs hold letters, digits and the characters _ - . only; secret
// access keys are at least MinSecretLength characters without white space.
// The same access key ID twice with different secrets is an error.
func LoadCredentials(path string, getenv func(string) string) (*Credentials, error) {
	c := &Credentials{keys: map[string]accessKey{}}
	if path != "" {
		if err := c.loadFile(path); err != nil {
			return nil, err
		}
	}
	if getenv != nil {
		id, secret, roleName := getenv("KILN_ACCESS_KEY_ID"), getenv("KILN_SECRET_ACCESS_KEY"), getenv("KILN_ROLE")
		switch {
		case id == "" && secret == "":
		case id == "" || secret == "":
			return nil, fmt.Errorf("KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY must be set together")
		default:
			role := DefaultRole
			if roleName != "" {
				var err error
				if role, err = ParseRole(roleName); err != nil {
					return nil, fmt.Errorf("KILN_ROLE: %w", err)
				}
			}
			if err := c.add(id, secret, role); err != nil {
				return nil, fmt.Errorf("KILN_ACCESS_KEY_ID/KILN_SECRET_ACCESS_KEY: %w", err)
			}
		}
	}
	return c, nil
}

func (c *Credentials) loadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read credentials: %w", err)
	}
	defer f.Close()
	type profile struct {
		name, id, secret, role string
		line, roleLine         int
	}
	var profiles []*profile
	var cur *profile
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF") // a byte order mark from some editors
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return fmt.Errorf("%s:%d: a profile header must look like [name]", path, n)
			}
			name := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line[1:len(line)-1]), "profile "))
			cur = &profile{name: name, line: n}
			profiles = append(profiles, cur)
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want key = value or [profile]", path, n)
		}
		key, value = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(value)
		if key != "aws_access_key_id" && key != "aws_secret_access_key" && key != "kiln_role" {
			continue
		}
		if cur == nil {
			return fmt.Errorf("%s:%d: %s is outside any [profile]", path, n, key)
		}
		switch key {
		case "aws_access_key_id":
			cur.id = value
		case "aws_secret_access_key":
			cur.secret = value
		default:
			cur.role, cur.roleLine = value, n
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read credentials %s: %w", path, err)
	}
	for _, p := range profiles {
		switch {
		case p.id == "" && p.secret == "" && p.role == "":
			continue
		case p.id == "" && p.secret == "":
			return fmt.Errorf("%s:%d: profile [%s] has kiln_role but no access key", path, p.roleLine, p.name)
		case p.id == "":
			return fmt.Errorf("%s:%d: profile [%s] has aws_secret_access_key but no aws_access_key_id", path, p.line, p.name)
		case p.secret == "":
			return fmt.Errorf("%s:%d: profile [%s] has aws_access_key_id but no aws_secret_access_key", path, p.line, p.name)
		}
		role := DefaultRole
		if p.role != "" {
			var err error
			if role, err = ParseRole(p.role); err != nil {
				return fmt.Errorf("%s:%d: profile [%s]: kiln_role: %w", path, p.roleLine, p.name, err)
			}
		}
		if err := c.add(p.id, p.secret, role); err != nil {
			return fmt.Errorf("%s:%d: profile [%s]: %w", path, p.line, p.name, err)
		}
	}
	return nil
}

func (c *Credentials) add(id, secret string, role Role) error {
	if id == "" || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.") != "" {
		return fmt.Errorf("access key ID %q must be letters, digits, _ - or . only", id)
	}
	if len(secret) < MinSecretLength {
		return fmt.Errorf("the secret access key of %s is %d characters; at least %d are required", id, len(secret), MinSecretLength)
	}
	if strings.ContainsAny(secret, " \t\r\n") {
		return fmt.Errorf("the secret access key of %s contains white space", id)
	}
	if old, ok := c.keys[id]; ok && (old.secret != secret || old.role != role) {
		return fmt.Errorf("access key ID %s appears twice with different secrets or roles", id)
	}
	c.keys[id] = accessKey{secret: secret, role: role, tokenKey: tokenKey(secret)}
	return nil
}

// Empty reports whether there are no credentials, in which case Kiln
// authenticates nobody and lets every request through.
func (c *Credentials) Empty() bool { return c == nil || len(c.keys) == 0 }

// AccessKeyIDs returns the accepted access key IDs, sorted, for logs.
func (c *Credentials) AccessKeyIDs() []string {
	if c == nil {
		return nil
	}
	ids := make([]string, 0, len(c.keys))
	for id := range c.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Role returns the role of the access key id.
func (c *Credentials) Role(id string) (Role, bool) {
	k, ok := c.key(id)
	return k.role, ok
}

func (c *Credentials) key(id string) (accessKey, bool) {
	if c == nil {
		return accessKey{}, false
	}
	k, ok := c.keys[id]
	return k, ok
}

func (c *Credentials) secret(id string) (string, bool) {
	k, ok := c.key(id)
	return k.secret, ok
}

// isSecret reports whether s is one of the secret access keys. Every
// secret is compared, in constant time, so the answer's timing says
// nothing about which secret came close.
func (c *Credentials) isSecret(s string) bool {
	if c == nil || s == "" {
		return false
	}
	found := 0
	for _, k := range c.keys {
		found |= subtle.ConstantTimeCompare([]byte(k.secret), []byte(s))
	}
	return found == 1
}

// CheckSecret returns the principal of the access key id if secret is its
// secret access key: the dashboard's sign-in form takes both.
func (c *Credentials) CheckSecret(id, secret string) (Principal, bool) {
	k, ok := c.key(id)
	if !ok || subtle.ConstantTimeCompare([]byte(k.secret), []byte(secret)) != 1 {
		return Principal{}, false
	}
	return Principal{AccessKeyID: id, Role: k.role, Via: "secret"}, true
}

// AuthError is a failed authentication, with the status and error code that
// AWS clients expect.
type AuthError struct {
	// Status is the HTTP status: 403 for a bad or missing signature, 413 for
	// a body too large to verify, 429 for a client that failed too often.
	Status int
	// Code is the error code of the JSON protocols (awsJson, rest-json):
	// InvalidSignatureException, UnrecognizedClientException,
	// IncompleteSignatureException, MissingAuthenticationTokenException,
	// ThrottlingException.
	Code string
	// QueryCode is the same failure's code in the awsQuery protocol and its
	// query-compatible successors (CloudWatch): SignatureDoesNotMatch,
	// InvalidClientTokenId, RequestExpired, IncompleteSignature,
	// MissingAuthenticationToken, Throttling. Empty means Code.
	QueryCode string
	Message   string

	retryAfter int // seconds, for a throttled client
}

func (e *AuthError) Error() string { return e.Code + ": " + e.Message }

func (e *AuthError) queryCode() string {
	if e.QueryCode != "" {
		return e.QueryCode
	}
	return e.Code
}

// Auth authenticates requests with the access keys in Creds: AWS Signature
// Version 4 everywhere, and for the native API, the CLI and the dashboard
// also tokens derived from a key (see MintToken) in an Authorization:
// Bearer header or the dashboard's session cookie. A secret access key is
// never accepted as a bearer token.
type Auth struct {
	// Creds are the accepted keys. If nil or empty, every request passes
	// unauthenticated.
	Creds *Credentials
	// Clock checks the request time and tokens' expiry. If nil, the wall
	// clock is used.
	Clock clock.Clock
	// MaxSkew is how far a request's X-Amz-Date may be from now. If zero,
	// 15 minutes, as AWS allows.
	MaxSkew time.Duration
	// MaxBody is the largest body Verify reads to check its hash. If zero,
	// MaxSignedBody.
	MaxBody int64
	// Limiter limits failed authentications per client. If nil, they are
	// not limited.
	Limiter *FailureLimiter
	// SessionCookie is the name of the dashboard's session cookie, which
	// holds a token; the native API accepts it as it accepts a bearer
	// token. If empty, no cookie is looked at.
	SessionCookie string

	// keys caches derived signing keys (see signingKey).
	keysMu sync.Mutex
	keys   map[string][]byte

	// revokedSet holds the MACs of signed-out sessions until they expire.
	revokedMu  sync.Mutex
	revokedSet map[string]time.Time
}

// MaxSignedBody is the default limit of a signed body: the largest that any
// Kiln API accepts, an invocation's 6 MiB.
const MaxSignedBody = 6 << 20

// Enabled reports whether requests are authenticated at all.
func (a *Auth) Enabled() bool { return a != nil && !a.Creds.Empty() }

func (a *Auth) now() time.Time {
	if a.Clock == nil {
		return clock.Real().Now()
	}
	return a.Clock.Now()
}

type accessKeyCtxKey struct{}

// AccessKeyID returns the access key ID that authenticated the request
// whose context is ctx, or "" if none did.
func AccessKeyID(ctx context.Context) string {
	id, _ := ctx.Value(accessKeyCtxKey{}).(string)
	return id
}

// limited runs verify unless the client has failed too often, and counts
// its failure.
func (a *Auth) limited(r *http.Request, verify func() (Principal, *AuthError)) (Principal, *AuthError) {
	if wait := a.Limiter.Wait(r.RemoteAddr); wait > 0 {
		return Principal{}, throttled(wait)
	}
	p, err := verify()
	if err != nil && err.Status != http.StatusRequestEntityTooLarge && err.Status != http.StatusBadRequest {
		a.Limiter.Fail(r.RemoteAddr)
	}
	return p, err
}

// refuse prepares w for an authentication failure without reading more of
// r's body: see DontReadBody.
func refuse(w http.ResponseWriter, r *http.Request, e *AuthError) {
	DontReadBody(w, r)
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
}

// RequireSigV4 serves h only to requests with a valid SigV4 signature by one
// of the credentials, and writes every failure with writeErr (for instance
// WriteAWSJSONAuthError or WriteRuntimeAuthError). With no credentials it
// returns h unchanged.
func (a *Auth) RequireSigV4(h http.Handler, writeErr func(http.ResponseWriter, *AuthError)) http.Handler {
	if !a.Enabled() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.limited(r, func() (Principal, *AuthError) { return a.verifySigV4(r) })
		if err != nil {
			refuse(w, r, err)
			writeErr(w, err)
			return
		}
		h.ServeHTTP(w, withPrincipal(r, p))
	})
}

// RequireNative serves h only to requests that authenticate as the native
// API allows (see Authenticate) and whose role grants need(r) (nil: any
// role). Failures get a 401 in the native API's error shape,
// {"code":"unauthorized","message":...}, and a missing permission a 403.
// With no credentials it returns h unchanged.
func (a *Auth) RequireNative(h http.Handler, need func(*http.Request) Permission) http.Handler {
	if !a.Enabled() {
		return h
	}
	if need != nil {
		h = RequirePermission(h, need)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			refuse(w, r, err)
			WriteNativeAuthError(w, err)
			return
		}
		h.ServeHTTP(w, withPrincipal(r, p))
	})
}

// WriteNativeAuthError writes an authentication failure in the native
// API's error shape: 401 (413 for an oversized signed body, 429 for a
// client that failed too often) with {"code":"unauthorized","message":...}.
func WriteNativeAuthError(w http.ResponseWriter, e *AuthError) {
	status, code := http.StatusUnauthorized, "unauthorized"
	switch e.Status {
	case http.StatusRequestEntityTooLarge:
		status = e.Status
	case http.StatusTooManyRequests:
		status, code = e.Status, "throttled"
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="kiln"`)
	WriteJSON(w, status, ErrorBody{Code: code, Message: e.Message})
}

// Authenticate authenticates r as the native API, invocations and
// /metrics allow: a SigV4 signature, a token in an Authorization: Bearer
// header, or the dashboard's session cookie. It returns the principal,
// and with no credentials a zero Principal and nil. Failures count against
// the client's limit.
func (a *Auth) Authenticate(r *http.Request) (Principal, *AuthError) {
	if !a.Enabled() {
		return Principal{}, nil
	}
	return a.limited(r, func() (Principal, *AuthError) { return a.authenticate(r) })
}

func (a *Auth) authenticate(r *http.Request) (Principal, *AuthError) {
	authz := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(authz, " ")
	token = strings.TrimSpace(token)
	switch {
	case strings.EqualFold(scheme, "Bearer") && IsToken(token):
		p, _, err := a.verifyToken(token)
		return p, err
	case strings.EqualFold(scheme, "Bearer") && a.Creds.isSecret(token):
		return Principal{}, &AuthError{Status: http.StatusUnauthorized, Code: "UnrecognizedClientException", QueryCode: "InvalidClientTokenId",
			Message: "A secret access key is not accepted as a bearer token: it would travel with every request. " +
				"Give the kiln CLI the key instead (--access-key-id and --secret-access-key, or KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY), which signs requests with SigV4; " +
				"for curl or scripts, get a short-lived token with `kiln token` and send it as the bearer token."}
	case strings.EqualFold(scheme, "Bearer"):
		return Principal{}, &AuthError{Status: http.StatusUnauthorized, Code: "UnrecognizedClientException", QueryCode: "InvalidClientTokenId",
			Message: "The bearer token is not a Kiln token (kiln1...); get one with `kiln token`."}
	case authz != "":
		return a.verifySigV4(r)
	}
	if a.SessionCookie != "" {
		if c, err := r.Cookie(a.SessionCookie); err == nil && c.Value != "" {
			p, _, aerr := a.verifyToken(c.Value)
			if aerr == nil {
				p.Via = "session"
			}
			return p, aerr
		}
	}
	return Principal{}, &AuthError{Status: http.StatusUnauthorized, Code: "MissingAuthenticationTokenException", QueryCode: "MissingAuthenticationToken",
		Message: "This server requires authentication: sign the request with AWS Signature Version 4 (the kiln CLI does, given --access-key-id and --secret-access-key), " +
			"or send Authorization: Bearer <token> with a token from `kiln token`."}
}

// VerifySession checks the token of a dashboard session cookie and returns
// its principal and expiry. It counts against the client's limit too.
func (a *Auth) VerifySession(r *http.Request, tok string) (Principal, time.Time, *AuthError) {
	var exp time.Time
	p, err := a.limited(r, func() (Principal, *AuthError) {
		if !IsToken(tok) {
			return Principal{}, &AuthError{Status: http.StatusUnauthorized, Code: "UnrecognizedClientException", Message: "The session is not valid; sign in again."}
		}
		p, e, err := a.verifyToken(tok)
		exp = e
		return p, err
	})
	return p, exp, err
}

// Login checks what the dashboard's sign-in form sends (an access key ID
// with its secret, or a token) and returns a new session token of the
// key's role (a token's own role, for a token) that expires after
// SessionTTL, or at the token's expiry if that comes first.
func (a *Auth) Login(r *http.Request, id, secret, token string) (string, Principal, time.Time, *AuthError) {
	var tok string
	var exp time.Time
	p, err := a.limited(r, func() (Principal, *AuthError) {
		bad := &AuthError{Status: http.StatusUnauthorized, Code: "UnrecognizedClientException", Message: "That access key ID and secret, or that token, is not valid for this Kiln."}
		var p Principal
		exp = a.now().Add(SessionTTL).Truncate(time.Second)
		switch {
		case token != "":
			if !IsToken(token) {
				if a.Creds.isSecret(token) {
					return Principal{}, &AuthError{Status: http.StatusUnauthorized, Code: "UnrecognizedClientException",
						Message: "That is a secret access key, not a token: enter it with its access key ID instead."}
				}
				return Principal{}, bad
			}
			var texp time.Time
			var err *AuthError
			if p, texp, err = a.verifyToken(token); err != nil {
				return Principal{}, err
			}
			if texp.Before(exp) {
				exp = texp
			}
		default:
			var ok bool
			if p, ok = a.Creds.CheckSecret(id, secret); !ok {
				return Principal{}, bad
			}
		}
		t, err := a.MintToken(p.AccessKeyID, p.Role, exp)
		if err != nil {
			return Principal{}, bad
		}
		tok = t
		p.Via = "session"
		return p, nil
	})
	return tok, p, exp, err
}

// HTTPStatus is the status the failure is answered with.
func (e *AuthError) HTTPStatus() int { return e.Status }

// longAgo is a read deadline that has passed.
var longAgo = time.Unix(1, 0)

// DontReadBody makes sure that net/http reads nothing more of r's body, for
// an answer that refuses it: left to itself, it reads up to 256 KiB of an
// unread body before it sends the answer (to reuse the connection) and
// again when the handler returns, so a client sending slowly would hold
// the answer back, and the connection. With Connection: close the answer
// goes at once, and the past read deadline makes the read that follows it
// fail at once, after which net/http closes the connection.
func DontReadBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	w.Header().Set("Connection", "close")
	// Not every ResponseWriter can (HTTP/2's closes the stream instead);
	// the header alone still sends the answer first.
	_ = http.NewResponseController(w).SetReadDeadline(longAgo)
}

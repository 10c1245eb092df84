package api

import (
	"bufio"
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kiln-serve/kiln/internal/clock"
)

// MinSecretLength is the shortest secret access key Kiln accepts. A secret
// is also a bearer token for the native API, which can start processes on
// the host, so it must not be guessable.
const MinSecretLength = 16

// Credentials are the access keys Kiln accepts: each access key ID with its
// secret access key. The zero value and nil hold none.
type Credentials struct {
	keys map[string]string // access key ID → secret access key
}

// LoadCredentials reads the access keys from the credentials file at path
// (none if path is "") and from the environment variables
// KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY, read through getenv (none
// if getenv is nil). Every key found is accepted.
//
// The file has the format of the AWS CLI's ~/.aws/credentials: sections
// (profiles) of key = value lines, each with aws_access_key_id and
// aws_secret_access_key. Profile names mean nothing to Kiln; other keys
// (region, output, ...) are ignored, so a credentials file made for the AWS
// CLI can be reused as is. Lines starting with # or ; are comments.
//
//	# /etc/kiln/credentials
//	[deployer]
//	aws_access_key_id = KILNDEPLOYER01
//	aws_secret_access_key = 3f8a1c9e0b7d45e2a6c4d1f0e9b8a7c6
//
//	[ci]
//	aws_access_key_id = KILNCI02
//	aws_secret_access_key = 0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a
//
// Access key IDs hold letters, digits and the characters _ - . only; secret
// access keys are at least MinSecretLength characters without white space.
// The same access key ID twice with different secrets is an error.
func LoadCredentials(path string, getenv func(string) string) (*Credentials, error) {
	c := &Credentials{keys: map[string]string{}}
	if path != "" {
		if err := c.loadFile(path); err != nil {
			return nil, err
		}
	}
	if getenv != nil {
		id, secret := getenv("KILN_ACCESS_KEY_ID"), getenv("KILN_SECRET_ACCESS_KEY")
		switch {
		case id == "" && secret == "":
		case id == "" || secret == "":
			return nil, fmt.Errorf("KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY must be set together")
		default:
			if err := c.add(id, secret); err != nil {
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
		name, id, secret string
		line             int
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
		if key != "aws_access_key_id" && key != "aws_secret_access_key" {
			continue
		}
		if cur == nil {
			return fmt.Errorf("%s:%d: %s is outside any [profile]", path, n, key)
		}
		if key == "aws_access_key_id" {
			cur.id = value
		} else {
			cur.secret = value
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read credentials %s: %w", path, err)
	}
	for _, p := range profiles {
		switch {
		case p.id == "" && p.secret == "":
			continue
		case p.id == "":
			return fmt.Errorf("%s:%d: profile [%s] has aws_secret_access_key but no aws_access_key_id", path, p.line, p.name)
		case p.secret == "":
			return fmt.Errorf("%s:%d: profile [%s] has aws_access_key_id but no aws_secret_access_key", path, p.line, p.name)
		}
		if err := c.add(p.id, p.secret); err != nil {
			return fmt.Errorf("%s:%d: profile [%s]: %w", path, p.line, p.name, err)
		}
	}
	return nil
}

func (c *Credentials) add(id, secret string) error {
	if id == "" || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.") != "" {
		return fmt.Errorf("access key ID %q must be letters, digits, _ - or . only", id)
	}
	if len(secret) < MinSecretLength {
		return fmt.Errorf("the secret access key of %s is %d characters; at least %d are required", id, len(secret), MinSecretLength)
	}
	if strings.ContainsAny(secret, " \t\r\n") {
		return fmt.Errorf("the secret access key of %s contains white space", id)
	}
	if old, ok := c.keys[id]; ok && old != secret {
		return fmt.Errorf("access key ID %s appears twice with different secrets", id)
	}
	c.keys[id] = secret
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

func (c *Credentials) secret(id string) (string, bool) {
	if c == nil {
		return "", false
	}
	s, ok := c.keys[id]
	return s, ok
}

// bearer returns the access key ID whose secret is token. Every secret is
// compared, in constant time, so the answer's timing says nothing about
// which secret came close.
func (c *Credentials) bearer(token string) (string, bool) {
	if c == nil || token == "" {
		return "", false
	}
	found := ""
	for id, secret := range c.keys {
		if subtle.ConstantTimeCompare([]byte(secret), []byte(token)) == 1 {
			found = id
		}
	}
	return found, found != ""
}

// AuthError is a failed authentication, with the status and error code that
// AWS clients expect.
type AuthError struct {
	// Status is the HTTP status: 403 for a bad or missing signature, 413 for
	// a body too large to verify.
	Status int
	// Code is the error code of the JSON protocols (awsJson, rest-json):
	// InvalidSignatureException, UnrecognizedClientException,
	// IncompleteSignatureException, MissingAuthenticationTokenException.
	Code string
	// QueryCode is the same failure's code in the awsQuery protocol and its
	// query-compatible successors (CloudWatch): SignatureDoesNotMatch,
	// InvalidClientTokenId, RequestExpired, IncompleteSignature,
	// MissingAuthenticationToken. Empty means Code.
	QueryCode string
	Message   string
}

func (e *AuthError) Error() string { return e.Code + ": " + e.Message }

func (e *AuthError) queryCode() string {
	if e.QueryCode != "" {
		return e.QueryCode
	}
	return e.Code
}

// Auth authenticates requests with the access keys in Creds: AWS Signature
// Version 4 for the AWS-compatible APIs, and additionally a bearer token
// (Authorization: Bearer <secret access key>) for the native API, the CLI
// and the dashboard.
type Auth struct {
	// Creds are the accepted keys. If nil or empty, every request passes
	// unauthenticated.
	Creds *Credentials
	// Clock checks the request time. If nil, the wall clock is used.
	Clock clock.Clock
	// MaxSkew is how far a request's X-Amz-Date may be from now. If zero,
	// 15 minutes, as AWS allows.
	MaxSkew time.Duration
	// MaxBody is the largest body Verify reads to check its hash. If zero,
	// MaxSignedBody.
	MaxBody int64

	// keys caches derived signing keys (see signingKey).
	keysMu sync.Mutex
	keys   map[string][]byte
}

// MaxSignedBody is the default limit of a signed body: the largest that any
// Kiln API accepts, an invocation's 6 MiB.
const MaxSignedBody = 6 << 20

// Enabled reports whether requests are authenticated at all.
func (a *Auth) Enabled() bool { return a != nil && !a.Creds.Empty() }

type accessKeyCtxKey struct{}

// AccessKeyID returns the access key ID that authenticated the request
// whose context is ctx, or "" if none did.
func AccessKeyID(ctx context.Context) string {
	id, _ := ctx.Value(accessKeyCtxKey{}).(string)
	return id
}

func withAccessKey(r *http.Request, id string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), accessKeyCtxKey{}, id))
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
		id, err := a.Verify(r)
		if err != nil {
			writeErr(w, err)
			return
		}
		h.ServeHTTP(w, withAccessKey(r, id))
	})
}

// RequireBearerOrSigV4 serves h only to requests that carry a secret access
// key as a bearer token (Authorization: Bearer <secret>) or a valid SigV4
// signature. Failures get a 401 in the native API's error shape,
// {"code":"unauthorized","message":...}. With no credentials it returns h
// unchanged.
func (a *Auth) RequireBearerOrSigV4(h http.Handler) http.Handler {
	if !a.Enabled() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.VerifyBearerOrSigV4(r)
		if err != nil {
			WriteNativeAuthError(w, err)
			return
		}
		h.ServeHTTP(w, withAccessKey(r, id))
	})
}

// WriteNativeAuthError writes an authentication failure in the native
// API's error shape: 401 (or 413 for an oversized signed body) with
// {"code":"unauthorized","message":...}.
func WriteNativeAuthError(w http.ResponseWriter, e *AuthError) {
	status := http.StatusUnauthorized
	if e.Status == http.StatusRequestEntityTooLarge {
		status = e.Status
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="kiln"`)
	WriteJSON(w, status, ErrorBody{Code: "unauthorized", Message: e.Message})
}

// VerifyBearerOrSigV4 authenticates r by bearer token or SigV4 and returns
// the access key ID it proved. With no credentials it returns "", nil.
func (a *Auth) VerifyBearerOrSigV4(r *http.Request) (string, *AuthError) {
	if !a.Enabled() {
		return "", nil
	}
	authz := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(authz, " ")
	if strings.EqualFold(scheme, "Bearer") {
		if id, ok := a.Creds.bearer(strings.TrimSpace(token)); ok {
			return id, nil
		}
		return "", &AuthError{Status: http.StatusUnauthorized, Code: "UnrecognizedClientException", QueryCode: "InvalidClientTokenId",
			Message: "The bearer token is not a secret access key this server accepts."}
	}
	if authz == "" {
		return "", &AuthError{Status: http.StatusUnauthorized, Code: "MissingAuthenticationTokenException", QueryCode: "MissingAuthenticationToken",
			Message: "This server requires authentication: send Authorization: Bearer <secret access key>, or sign the request with AWS Signature Version 4."}
	}
	return a.Verify(r)
}

package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/kiln-serve/kiln/internal/clock"
)

// SigV4 verification (AWS Signature Version 4, header form).
//
// Kiln rebuilds the canonical request from exactly the headers the client
// lists in SignedHeaders, rather than asking a client-side signer to sign a
// copy: every SDK picks the headers it signs by its own rules (botocore and
// the Go SDK disagree on content-length, for one), and the server must
// follow the list it was given. The canonical URI is the escaped path
// escaped once more, as for every service but S3. The tests check the
// result against requests signed by aws-sdk-go-v2's signer and by botocore.

const (
	sigV4Algorithm  = "AWS4-HMAC-SHA256"
	sigV4Terminator = "aws4_request"
	amzDateFormat   = "20060102T150405Z"
	// DefaultMaxSkew is how far a request's time may be from the server's.
	DefaultMaxSkew = 15 * time.Minute
)

// sigV4Header is a parsed Authorization header.
type sigV4Header struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

func incomplete(msg string) *AuthError {
	return &AuthError{Status: http.StatusForbidden, Code: "IncompleteSignatureException", QueryCode: "IncompleteSignature", Message: msg}
}

func badSignature(msg string) *AuthError {
	return &AuthError{Status: http.StatusForbidden, Code: "InvalidSignatureException", QueryCode: "SignatureDoesNotMatch", Message: msg}
}

// parseSigV4Header parses
// "AWS4-HMAC-SHA256 Credential=AK/20260102/us-east-1/sagemaker/aws4_request, SignedHeaders=host;x-amz-date, Signature=hex".
func parseSigV4Header(authz string) (sigV4Header, *AuthError) {
	var h sigV4Header
	alg, rest, _ := strings.Cut(strings.TrimSpace(authz), " ")
	if alg != sigV4Algorithm {
		return h, incomplete(fmt.Sprintf("Authorization header must use %s (AWS Signature Version 4) with Credential, SignedHeaders and Signature; got scheme %q.", sigV4Algorithm, Truncate(alg, 40)))
	}
	var cred, signed string
	var haveCred, haveSigned, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Credential":
			cred, haveCred = strings.TrimSpace(v), true
		case "SignedHeaders":
			signed, haveSigned = strings.TrimSpace(v), true
		case "Signature":
			h.signature, haveSig = strings.TrimSpace(v), true
		}
	}
	var missing []string
	if !haveCred {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if !haveSigned {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if !haveSig {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if len(missing) > 0 {
		return h, incomplete(strings.Join(missing, " "))
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[0] == "" || scope[4] != sigV4Terminator {
		return h, incomplete(fmt.Sprintf("Credential must have the form <access key ID>/<YYYYMMDD>/<region>/<service>/%s; got %q.", sigV4Terminator, Truncate(cred, 200)))
	}
	h.accessKey, h.date, h.region, h.service = scope[0], scope[1], scope[2], scope[3]
	if signed == "" {
		return h, incomplete("SignedHeaders is empty; it must list at least host and x-amz-date.")
	}
	h.signedHeaders = strings.Split(signed, ";")
	return h, nil
}

// Verify checks r's SigV4 signature and returns the access key ID that made
// it. The body is read (up to MaxBody) to check its hash, and put back so
// the handler reads it as sent. With no credentials Verify returns "", nil
// without looking at r.
//
// Nothing of the body is read before the header has been checked as far as
// it can be: the key, the time, and, when the client signed
// X-Amz-Content-Sha256 (the kiln CLI does), the signature itself over the
// hash it claims; the body is then read and held to that hash.
func (a *Auth) Verify(r *http.Request) (string, *AuthError) {
	p, err := a.verifySigV4(r)
	return p.AccessKeyID, err
}

func (a *Auth) verifySigV4(r *http.Request) (Principal, *AuthError) {
	if !a.Enabled() {
		return Principal{}, nil
	}
	id, err := a.verifySigV4ID(r)
	if err != nil {
		return Principal{}, err
	}
	role, _ := a.Creds.Role(id)
	return Principal{AccessKeyID: id, Role: role, Via: "sigv4"}, nil
}

func (a *Auth) verifySigV4ID(r *http.Request) (string, *AuthError) {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		if r.URL.Query().Has("X-Amz-Signature") {
			return "", incomplete("Kiln does not accept presigned URLs; sign requests with the Authorization header.")
		}
		return "", &AuthError{Status: http.StatusForbidden, Code: "MissingAuthenticationTokenException", QueryCode: "MissingAuthenticationToken",
			Message: "Missing Authentication Token: this server requires requests signed with AWS Signature Version 4 by a configured access key."}
	}
	h, aerr := parseSigV4Header(authz)
	if aerr != nil {
		return "", aerr
	}
	secret, ok := a.Creds.secret(h.accessKey)
	if !ok {
		return "", &AuthError{Status: http.StatusForbidden, Code: "UnrecognizedClientException", QueryCode: "InvalidClientTokenId",
			Message: "The security token included in the request is invalid."}
	}

	// The time: X-Amz-Date, signed, within MaxSkew of now, and on the day
	// the credential scope names.
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return "", incomplete("Authorization header requires existence of a 'X-Amz-Date' header.")
	}
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return "", incomplete(fmt.Sprintf("X-Amz-Date %q is not in the ISO 8601 basic format YYYYMMDD'T'HHMMSS'Z'.", Truncate(amzDate, 40)))
	}
	if h.date != amzDate[:8] {
		return "", badSignature(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", h.date, amzDate[:8], amzDate))
	}
	c := a.Clock
	if c == nil {
		c = clock.Real()
	}
	skew := a.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	now := c.Now().UTC()
	if t.Before(now.Add(-skew)) {
		return "", &AuthError{Status: http.StatusForbidden, Code: "InvalidSignatureException", QueryCode: "RequestExpired",
			Message: fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s).", amzDate, now.Add(-skew).Format(amzDateFormat), now.Format(amzDateFormat), fmtSkew(skew))}
	}
	if t.After(now.Add(skew)) {
		return "", &AuthError{Status: http.StatusForbidden, Code: "InvalidSignatureException", QueryCode: "RequestExpired",
			Message: fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s).", amzDate, now.Add(skew).Format(amzDateFormat), now.Format(amzDateFormat), fmtSkew(skew))}
	}
	if !contains(h.signedHeaders, "host") || !contains(h.signedHeaders, "x-amz-date") {
		return "", badSignature("SignedHeaders must include host and x-amz-date.")
	}

	claimed := r.Header.Get("X-Amz-Content-Sha256")
	if claimed == "UNSIGNED-PAYLOAD" || strings.HasPrefix(claimed, "STREAMING-") {
		return "", badSignature(fmt.Sprintf("X-Amz-Content-Sha256 %s is not accepted; sign the payload's SHA-256 hash.", Truncate(claimed, 64)))
	}
	if isSHA256Hex(claimed) && contains(h.signedHeaders, "x-amz-content-sha256") {
		// The signature covers the hash the client claims: check it
		// before reading a byte of the body, then the body against it.
		if aerr := a.checkSignature(r, h, secret, amzDate, strings.ToLower(claimed)); aerr != nil {
			return "", aerr
		}
		body, aerr := a.readBody(r)
		if aerr != nil {
			return "", aerr
		}
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != strings.ToLower(claimed) {
			return "", badSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
		return h.accessKey, nil
	}

	// The payload: hash what was sent, and hold the client to the hash it
	// claims in X-Amz-Content-Sha256, if any.
	body, aerr := a.readBody(r)
	if aerr != nil {
		return "", aerr
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if claimed != "" && claimed != payloadHash {
		return "", badSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	if aerr := a.checkSignature(r, h, secret, amzDate, payloadHash); aerr != nil {
		return "", aerr
	}
	return h.accessKey, nil
}

// checkSignature checks h's signature of r with payloadHash.
func (a *Auth) checkSignature(r *http.Request, h sigV4Header, secret, amzDate, payloadHash string) *AuthError {
	canonical, aerr := canonicalRequest(r, h.signedHeaders, payloadHash)
	if aerr != nil {
		return aerr
	}
	scope := h.date + "/" + h.region + "/" + h.service + "/" + sigV4Terminator
	canonicalSum := sha256.Sum256([]byte(canonical))
	stringToSign := sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(canonicalSum[:])
	key := a.signingKey(secret, h.date, h.region, h.service)
	want := hex.EncodeToString(hmacSHA256(key, stringToSign))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(h.signature))) {
		// As AWS does, show the canonical request and string to sign (they
		// hold no secret) so that a client author can find the difference.
		return badSignature("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method." +
			"\n\nThe Canonical String for this request should have been\n'" + canonical + "'\n\nThe String-to-Sign should have been\n'" + stringToSign + "'\n")
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// readBody reads r's body for hashing and replaces it with a reader of the
// same bytes.
func (a *Auth) readBody(r *http.Request) ([]byte, *AuthError) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	limit := a.MaxBody
	if limit <= 0 {
		limit = MaxSignedBody
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	r.Body.Close()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &AuthError{Status: http.StatusRequestEntityTooLarge, Code: "ValidationException", QueryCode: "RequestEntityTooLarge",
				Message: fmt.Sprintf("The request body is larger than %d bytes.", mbe.Limit)}
		}
		return nil, &AuthError{Status: http.StatusBadRequest, Code: "SerializationException", QueryCode: "MalformedInput",
			Message: "The request body could not be read: " + err.Error()}
	}
	if int64(len(body)) > limit {
		return nil, &AuthError{Status: http.StatusRequestEntityTooLarge, Code: "ValidationException", QueryCode: "RequestEntityTooLarge",
			Message: fmt.Sprintf("The request body is larger than %d bytes.", limit)}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return body, nil
}

// canonicalRequest builds SigV4's canonical request of r over the headers in
// signed, in the order given (clients list them sorted).
func canonicalRequest(r *http.Request, signed []string, payloadHash string) (string, *AuthError) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(httpbinding.EscapePath(path, false))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for i, name := range signed {
		if name == "" || name != strings.ToLower(name) {
			return "", badSignature(fmt.Sprintf("SignedHeaders must be lower-case header names separated by ';'; got %q.", name))
		}
		if i > 0 && signed[i-1] >= name {
			return "", badSignature("SignedHeaders must be sorted and without duplicates.")
		}
		var values []string
		switch name {
		case "host":
			values = []string{r.Host}
		case "content-length":
			// net/http moves Content-Length out of the header map.
			if v := r.Header.Values("Content-Length"); len(v) > 0 {
				values = v
			} else if r.ContentLength >= 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			if len(r.TransferEncoding) > 0 {
				values = []string{strings.Join(r.TransferEncoding, ",")}
			}
		default:
			values = r.Header.Values(name)
		}
		if values == nil {
			return "", badSignature(fmt.Sprintf("The header %q is listed in SignedHeaders but is not in the request.", name))
		}
		b.WriteString(name)
		b.WriteByte(':')
		for j, v := range values {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(collapseSpaces(v))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String(), nil
}

// canonicalQuery sorts the query's parameters by name, then value, and
// encodes them with RFC 3986's unreserved set, as SigV4 wants.
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var pairs []kv
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		pairs = append(pairs, kv{uriEncode(k), uriEncode(v)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// uriEncode percent-encodes every byte outside A-Z a-z 0-9 - _ . ~.
func uriEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// collapseSpaces trims v and turns each run of spaces into one, as SigV4's
// canonical header values require.
func collapseSpaces(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// maxSigningKeys bounds Auth's cache of signing keys; it is emptied when
// full. A key serves a client for a day, in one region and service.
const maxSigningKeys = 256

// signingKey derives SigV4's signing key from secret for a date, region and
// service. It is four HMACs, and a client signs a whole day's requests with
// the same key, so keys are kept.
func (a *Auth) signingKey(secret, date, region, service string) []byte {
	id := secret + "\x00" + date + "\x00" + region + "\x00" + service
	a.keysMu.Lock()
	key, ok := a.keys[id]
	a.keysMu.Unlock()
	if ok {
		return key
	}
	key = hmacSHA256([]byte("AWS4"+secret), date)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, sigV4Terminator)
	a.keysMu.Lock()
	if a.keys == nil || len(a.keys) >= maxSigningKeys {
		a.keys = make(map[string][]byte)
	}
	a.keys[id] = key
	a.keysMu.Unlock()
	return key
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func fmtSkew(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min.", int(d/time.Minute))
	}
	return d.String()
}

// Truncate bounds what an error message repeats of a request: s, cut to n
// bytes and marked as cut.
func Truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

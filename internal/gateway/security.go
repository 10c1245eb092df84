package gateway

import "net/http"

// A model's answer is passed through with the model's own Content-Type, on
// the origin that also serves the dashboard. A model that answers
// text/html (or whose body a browser would sniff as HTML) would otherwise
// run script with the dashboard's origin. So every answer of the gateway
// tells the browser not to sniff, and to render what it gets with no
// script, no subresource and in a sandbox (an origin of its own).
const (
	hContentTypeOptions = "X-Content-Type-Options"
	hCSP                = "Content-Security-Policy"
	nosniff             = "nosniff"
	invocationCSP       = "default-src 'none'; frame-ancestors 'none'; sandbox"
)

var (
	nosniffValue = []string{nosniff}
	cspValue     = []string{invocationCSP}
	// securityHead is the same two header lines, for the fast path.
	securityHead = hContentTypeOptions + ": " + nosniff + "\r\n" + hCSP + ": " + invocationCSP + "\r\n"
)

// setSecurityHeaders sets them on an answer of the net/http path.
func setSecurityHeaders(h http.Header) {
	h[hContentTypeOptions] = nosniffValue
	h[hCSP] = cspValue
}

// validHost reports whether v, a Host header's value, is one net/http's
// server accepts (golang.org/x/net/http/httpguts.ValidHostHeader): the
// bytes of a host, a port, an IPv6 literal in brackets, or percent
// escapes, and no space, control character, other delimiter or byte past
// ASCII. The fast path
// hands a request with any other Host to net/http, which answers 400.
func validHost(v []byte) bool {
	for _, c := range v {
		if !hostChars[c] {
			return false
		}
	}
	return true
}

// hostChars marks the bytes validHost accepts: RFC 3986's unreserved and
// sub-delims, and ':' '[' ']' '%' for ports, IPv6 literals and escapes.
var hostChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,;=:[]%" {
		t[c] = true
	}
	return t
}()

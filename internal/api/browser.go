package api

import (
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// The browser guard. A server that listens only on loopback is still within
// reach of every web page its user opens: a page may send requests to
// http://127.0.0.1:8080 (the browser refuses it only the answer, not the
// sending), and a page whose name the attacker later resolves to 127.0.0.1
// (DNS rebinding) is, to the browser, of the same origin as the server and
// reads the answers too. With a model's Image being a command line Kiln
// runs, either would be a shell for any web page. So one guard, in front of
// everything Kiln serves over HTTP, refuses what a browser sends on behalf
// of a page of another site, by what browsers always say about it:
//
//   - the Host header, which a rebound name cannot fake: only loopback
//     names and addresses, the address Kiln listens on, and the names an
//     operator allows (--allowed-host) are served;
//   - Sec-Fetch-Site and Origin: a request from another site (another
//     port of the same host is another origin, and the same site) is
//     refused, unless it is a read the user navigated to, whose answer the
//     page that linked to it never sees;
//   - Content-Type: the native API's bodies are JSON, and a page can send
//     application/json to another origin only after a CORS preflight,
//     which Kiln never grants; so a body of any other type, or of none, is
//     refused with 415;
//   - the AWS protocols are spoken by the AWS SDKs and CLIs, which never
//     send Origin or Sec-Fetch-*: a request that bears them comes from a
//     browser, and is refused.
//
// It lives here, beside the protocols' error shapes, so that a refusal is
// written in the shape the client reads; internal/server puts it in front
// of its mux, and in front of the gateway's own connections through
// gateway.Config.Authorize.

// GuardConfig configures NewGuard.
type GuardConfig struct {
	// Addr is the address Kiln listens on. Its host is accepted in the Host
	// header; an unspecified one ("", 0.0.0.0, ::) accepts every IP
	// address, which a rebound name can never be.
	Addr string
	// AllowedHosts are the further names the Host header may carry: a name
	// or IP address (a port is ignored), ".example.com" for example.com and
	// every name below it, or "*" for any host, which only Authenticated
	// may use.
	AllowedHosts []string
	// Authenticated tells that credentials are configured, so that a
	// request from anywhere still needs them.
	Authenticated bool
	// Logger receives each refusal at debug level; nil discards them.
	Logger *slog.Logger
}

// Guard refuses the requests a web page can make a browser send to Kiln.
// Build it with NewGuard; it is safe for concurrent use.
type Guard struct {
	names    map[string]bool // exact names and IP addresses, lower case
	suffixes []string        // ".example.com"
	anyHost  bool
	anyIP    bool
	log      *slog.Logger
}

// GuardRefusal is the guard's answer to a request it turns away.
type GuardRefusal struct {
	Status int
	// Code is the native API's error code; AWSCode and QueryCode name the
	// same refusal for the AWS protocols.
	Code, AWSCode, QueryCode string
	Message                  string
}

// NewGuard checks cfg and returns its guard.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	g := &Guard{names: map[string]bool{}, log: cfg.Logger}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		host = cfg.Addr
	}
	switch h := canonicalHost(host); {
	case h == "":
		g.anyIP = true
	case isIP(h) && netip.MustParseAddr(h).IsUnspecified():
		g.anyIP = true
	default:
		g.names[h] = true
	}
	for _, entry := range cfg.AllowedHosts {
		entry = strings.TrimSpace(entry)
		switch {
		case entry == "":
			continue
		case entry == "*":
			if !cfg.Authenticated {
				return nil, fmt.Errorf("--allowed-host '*' needs credentials (--credentials-file, or KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY): without them any web page could reach Kiln through a name it resolves to this host")
			}
			g.anyHost = true
			continue
		case strings.Contains(entry, "/"):
			return nil, fmt.Errorf("--allowed-host %q: want a host name such as kiln.example.com, not a URL", entry)
		}
		suffix := strings.HasPrefix(entry, ".")
		h := canonicalHost(splitHostPort(strings.TrimPrefix(entry, ".")))
		if !validHostName(h) {
			return nil, fmt.Errorf("--allowed-host %q: want a host name such as kiln.example.com, .example.com (the name and every name below it), an IP address, or *", entry)
		}
		if suffix {
			g.suffixes = append(g.suffixes, "."+h)
			g.names[h] = true
		} else {
			g.names[h] = true
		}
	}
	return g, nil
}

// Handler serves next every request the guard lets through, and answers
// the others itself, in the error shape of the API they called.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ref := g.Check(r); ref != nil {
			g.refuse(w, r, ref)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Check returns why r is refused, or nil, and logs a refusal. It reads
// headers only, never the body, and does not allocate for a request it lets
// through.
func (g *Guard) Check(r *http.Request) *GuardRefusal {
	ref := g.check(r)
	if ref != nil {
		g.log.Debug("refused a request", "status", ref.Status, "method", r.Method, "path", r.URL.Path,
			"host", r.Host, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"),
			"remote", r.RemoteAddr, "reason", ref.Message)
	}
	return ref
}

func (g *Guard) check(r *http.Request) *GuardRefusal {
	if !g.hostAllowed(r.Host) {
		return &GuardRefusal{Status: http.StatusMisdirectedRequest, Code: "misdirected_request",
			AWSCode: "AccessDeniedException", QueryCode: "AccessDenied",
			Message: fmt.Sprintf("Kiln does not answer to the host %q. It answers to localhost, loopback addresses, the address it listens on, "+
				"and the names given with --allowed-host (env KILN_ALLOWED_HOSTS); if you reach Kiln by this name, start it with --allowed-host %s. "+
				"Any other name may be a web page's, resolved to this machine to reach Kiln.", clip(r.Host), clip(splitHostPort(r.Host)))}
	}
	if isAWSPath(r) {
		if marker := browserMarker(r.Header); marker != "" {
			return forbidden(fmt.Sprintf("Kiln refuses requests from web browsers to its AWS APIs (this one sent %s). "+
				"The AWS SDKs and CLIs never send it; a web page may not call these APIs.", marker))
		}
		return nil
	}
	if why := crossSite(r); why != "" && !(safeMethod(r.Method) && r.Header.Get("Sec-Fetch-Mode") == "navigate") {
		return forbidden(fmt.Sprintf("Kiln refuses requests from other sites (this one sent %s): a web page of another origin may not call Kiln. "+
			"Call the API from a program (the kiln CLI, an AWS SDK, curl), or use the dashboard at /ui/ of Kiln's own address.", why))
	}
	if strings.HasPrefix(r.URL.Path, "/v1/") && r.ContentLength != 0 {
		ct := r.Header.Get("Content-Type")
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			got := "none was sent"
			if ct != "" {
				got = fmt.Sprintf("got %q", clip(ct))
			}
			return &GuardRefusal{Status: http.StatusUnsupportedMediaType, Code: "invalid",
				AWSCode: "ValidationException", QueryCode: "ValidationError",
				Message: fmt.Sprintf("The native API takes a request body only as JSON: send Content-Type: application/json (%s).", got)}
		}
	}
	return nil
}

func forbidden(msg string) *GuardRefusal {
	return &GuardRefusal{Status: http.StatusForbidden, Code: "forbidden",
		AWSCode: "AccessDeniedException", QueryCode: "AccessDenied", Message: msg}
}

// refuse writes ref in the error shape of the API r called.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, ref *GuardRefusal) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	switch {
	case isAWSPath(r):
		if h.Get(HeaderRequestID) == "" {
			h.Set(HeaderRequestID, NewRequestID())
		}
		writeProtocolAuthError(w, r, detectProtocol(r), nil,
			&AuthError{Status: ref.Status, Code: ref.AWSCode, QueryCode: ref.QueryCode, Message: ref.Message})
	case strings.HasPrefix(r.URL.Path, "/endpoints/"):
		// The runtime API's shape, as the gateway writes it.
		writeJSONError(w, "application/json", ref.Status, ref.AWSCode, ref.Message)
	default:
		WriteJSON(w, ref.Status, ErrorBody{Code: ref.Code, Message: ref.Message})
	}
}

// isAWSPath tells the requests Kiln routes to the SageMaker and CloudWatch
// APIs.
func isAWSPath(r *http.Request) bool {
	return r.URL.Path == "/" && r.Method == http.MethodPost || strings.HasPrefix(r.URL.Path, "/service/")
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// browserMarker names the first header of r that only browsers send, or "".
func browserMarker(h http.Header) string {
	for _, k := range [...]string{"Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User"} {
		if _, ok := h[k]; ok {
			return k
		}
	}
	return ""
}

// crossSite tells why r comes from a page of another origin, or "".
// Sec-Fetch-Site is the browser's own verdict (same-site is another origin
// of the same site: another port of 127.0.0.1 is one); Origin covers the
// browsers that do not send it, and "null" (a sandboxed frame, a file) is
// never Kiln's own.
func crossSite(r *http.Request) string {
	for _, v := range r.Header["Sec-Fetch-Site"] {
		if v == "cross-site" || v == "same-site" {
			return "Sec-Fetch-Site: " + v
		}
	}
	for _, o := range r.Header["Origin"] {
		if !sameOrigin(o, r) {
			return fmt.Sprintf("Origin: %q", clip(o))
		}
	}
	return ""
}

// sameOrigin reports whether origin names the host r was sent to. The
// scheme is not compared: behind a proxy that ends TLS, the page is https
// and Kiln sees plain HTTP.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	// The default port may be written on one side only.
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return strings.EqualFold(withoutPort(u.Host, port), withoutPort(r.Host, port))
}

func withoutPort(host, port string) string {
	return strings.TrimSuffix(host, ":"+port)
}

// hostAllowed reports whether Kiln answers to the Host header host. No
// Host at all (HTTP/1.0) is not a browser's.
func (g *Guard) hostAllowed(host string) bool {
	if host == "" || g.anyHost {
		return true
	}
	h := strings.TrimSuffix(splitHostPort(host), ".")
	if maybeIP(h) {
		if ip, err := netip.ParseAddr(h); err == nil {
			ip = ip.Unmap()
			return ip.IsLoopback() || g.anyIP || g.names[ip.String()]
		}
	}
	h = canonicalHost(h)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		// Browsers resolve these to loopback themselves (RFC 6761), so no
		// one can rebind them.
		return true
	}
	if g.names[h] {
		return true
	}
	for _, s := range g.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// splitHostPort returns the host of a Host header: without its port, and
// an IPv6 address without its brackets.
func splitHostPort(hostport string) string {
	if strings.HasPrefix(hostport, "[") {
		if end := strings.IndexByte(hostport, ']'); end > 0 {
			return hostport[1:end]
		}
		return hostport
	}
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && strings.IndexByte(hostport[:i], ':') < 0 {
		return hostport[:i]
	}
	return hostport
}

// canonicalHost lower-cases a host name and drops the final dot of a fully
// qualified one; an IP address comes back in its standard form.
func canonicalHost(h string) string {
	h = strings.TrimSuffix(h, ".")
	if maybeIP(h) {
		if ip, err := netip.ParseAddr(h); err == nil {
			return ip.Unmap().String()
		}
	}
	for i := 0; i < len(h); i++ {
		if 'A' <= h[i] && h[i] <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// maybeIP tells a host that may be an IP address (without the port, an IPv6
// one has colons) from a name, without the allocation of a failed parse.
func maybeIP(h string) bool {
	if strings.IndexByte(h, ':') >= 0 {
		return true
	}
	for i := 0; i < len(h); i++ {
		if (h[i] < '0' || h[i] > '9') && h[i] != '.' {
			return false
		}
	}
	return true
}

func isIP(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

// validHostName accepts an IP address or a DNS name of letters, digits,
// hyphens and underscores between dots.
func validHostName(h string) bool {
	if isIP(h) {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// clip bounds what a refusal repeats of a request.
func clip(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

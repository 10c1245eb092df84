package ui

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/kiln-serve/kiln"
)

// CookieName is the cookie that carries the bearer token after a login.
const CookieName = "kiln_token"

// maxTokenLength bounds what the login form accepts; real tokens are far
// shorter, and a bound keeps a hostile form post from costing anything.
const maxTokenLength = 4096

// TokenFromCookie returns the bearer token of the dashboard's login cookie,
// or "". The server's API authentication can accept it beside the
// Authorization header: the cookie is HttpOnly and SameSite=Strict, so other
// sites can neither read it nor make the browser send it.
func TokenFromCookie(r *http.Request) string {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

// bearerToken returns the token of an "Authorization: Bearer" header, or "".
func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// authorized reports whether r may use the dashboard: always when no
// authentication is configured, else with a valid token in the cookie or in
// an Authorization header.
func (h *handler) authorized(r *http.Request) bool {
	if h.auth == nil {
		return true
	}
	if tok := TokenFromCookie(r); tok != "" && h.auth(tok) {
		return true
	}
	tok := bearerToken(r)
	return tok != "" && h.auth(tok)
}

func (h *handler) requireAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kiln"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "Sign in to the dashboard with Kiln's bearer token.")
			return
		}
		next(w, r)
	}
}

type loginData struct {
	Next   string
	Failed bool
}

// loginPage asks for the token. It is served even to a signed-in browser, so
// that a page whose API calls were refused can always get a new token.
func (h *handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if h.auth == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	h.render(w, http.StatusOK, "login.html", loginData{Next: safeNext(r.URL.Query().Get("next")), Failed: r.URL.Query().Has("failed")})
}

// login checks the token of the form (field "token") and, if valid, sets the
// cookie. A script asking for JSON gets 204 or 401; a plain form post is
// redirected to the page it came for, or back to the form.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	wantsJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, kiln.EINVALID, "The login form could not be read: send token=... as application/x-www-form-urlencoded.")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	if h.auth == nil {
		// Nothing to check; there is no cookie to set either.
		if wantsJSON {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if tok == "" || len(tok) > maxTokenLength || !h.auth(tok) {
		h.log.Info("dashboard: login refused", "remote", r.RemoteAddr)
		if wantsJSON {
			writeError(w, http.StatusUnauthorized, "unauthorized", "That token is not valid for this Kiln.")
			return
		}
		http.Redirect(w, r, "/ui/login?failed=1&next="+urlQueryEscape(next), http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    tok,
		Path:     "/", // the API under /v1 may accept it too
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	if wantsJSON {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout clears the cookie; the page clears its copy of the token.
func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	target := Prefix
	if h.auth != nil {
		target = "/ui/login"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext returns next if it is a dashboard path, else the overview, so that
// a crafted link cannot send a browser elsewhere after it signs in.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.ContainsAny(next, "\\\r\n") || strings.Contains(next, "//") {
		return Prefix
	}
	return next
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

package ui

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
)

// CookieName is the dashboard's session cookie. It holds a session token
// that expires (12 hours after sign-in by default), never a secret access
// key: it is HttpOnly, SameSite=Strict, and Secure when Kiln serves HTTPS,
// so scripts cannot read it and other sites cannot make the browser send
// it. The native API accepts it too, for the pages' own calls.
const CookieName = "kiln_session"

// maxFieldLength bounds what the sign-in form accepts; real keys and
// tokens are far shorter, and a bound keeps a hostile form post from
// costing anything.
const maxFieldLength = 4096

// Sessions are the dashboard's sign-in hooks. Kiln's server implements
// them with its access keys.
type Sessions struct {
	// Login checks what the sign-in form sent, an access key ID with its
	// secret access key or a token, and returns a new session token and
	// its expiry. An error with an HTTPStatus() int method sets the
	// status of the refusal (429 for a client that failed too often).
	Login func(r *http.Request, accessKeyID, secret, token string) (session string, expires time.Time, err error)
	// Check returns nil if session is a valid session token.
	Check func(r *http.Request, session string) error
	// Logout ends session, so that it is refused from then on.
	Logout func(session string)
}

func (h *handler) authRequired() bool { return h.sessions != nil }

// authorized reports whether r may use the dashboard: always when no
// authentication is configured, else with a valid session cookie.
func (h *handler) authorized(r *http.Request) (bool, error) {
	if !h.authRequired() {
		return true, nil
	}
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return false, nil
	}
	if err := h.sessions.Check(r, c.Value); err != nil {
		return false, err
	}
	return true, nil
}

func (h *handler) requireAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, err := h.authorized(r)
		if !ok {
			status, msg := http.StatusUnauthorized, "Sign in to the dashboard with an access key, or a token from `kiln token`."
			if s := statusOf(err); s == http.StatusTooManyRequests {
				status, msg = s, err.Error()
			} else if err != nil {
				msg = err.Error()
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="kiln"`)
			writeError(w, status, "unauthorized", msg)
			return
		}
		next(w, r)
	}
}

func statusOf(err error) int {
	var s interface{ HTTPStatus() int }
	if errors.As(err, &s) {
		return s.HTTPStatus()
	}
	return 0
}

type loginData struct {
	Next    string
	Failed  bool
	Expired bool
}

// loginPage asks for an access key or a token. It is served even to a
// signed-in browser, so that a page whose API calls were refused can
// always sign in again.
func (h *handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if !h.authRequired() {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	q := r.URL.Query()
	h.render(w, http.StatusOK, "login.html", loginData{Next: safeNext(q.Get("next")), Failed: q.Has("failed"), Expired: q.Has("expired")})
}

// login checks the form (fields access_key_id and secret_access_key, or
// token) and, if valid, sets the session cookie. A script asking for JSON
// gets 204 or 401; a plain form post is redirected to the page it came
// for, or back to the form.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	wantsJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, kiln.EINVALID, "The sign-in form could not be read: send access_key_id and secret_access_key, or token, as application/x-www-form-urlencoded.")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !h.authRequired() {
		// Nothing to check; there is no cookie to set either.
		if wantsJSON {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	id := strings.TrimSpace(r.PostForm.Get("access_key_id"))
	secret := strings.TrimSpace(r.PostForm.Get("secret_access_key"))
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	var session string
	var expires time.Time
	err := errors.New("Enter an access key ID and its secret access key, or a token.")
	if (tok != "" || id != "" && secret != "") && len(id)+len(secret)+len(tok) <= maxFieldLength {
		session, expires, err = h.sessions.Login(r, id, secret, tok)
	}
	if err != nil {
		h.log.Info("dashboard: sign-in refused", "remote", r.RemoteAddr, "access_key_id", id)
		if wantsJSON {
			status := http.StatusUnauthorized
			if s := statusOf(err); s == http.StatusTooManyRequests {
				status = s
			}
			writeError(w, status, "unauthorized", err.Error())
			return
		}
		http.Redirect(w, r, "/ui/login?failed=1&next="+urlQueryEscape(next), http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    session,
		Path:     "/", // the pages call the API under /v1 with it
		Expires:  expires,
		MaxAge:   int(time.Until(expires).Seconds()),
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

// logout ends the session and clears the cookie.
func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" && h.authRequired() {
		h.sessions.Logout(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	target := Prefix
	if h.authRequired() {
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

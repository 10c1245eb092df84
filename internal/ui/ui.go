package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
)

// Prefix is where the dashboard lives; Handler serves every path below it.
const Prefix = "/ui/"

// Config is what the dashboard needs.
type Config struct {
	// Service is the control plane the live stream reads. Required.
	Service kiln.Service
	// Clock paces the live stream. If nil, the wall clock is used.
	Clock clock.Clock
	// Logger receives errors the dashboard could not show. If nil, they
	// are discarded.
	Logger *slog.Logger
	// Sessions sign browsers in. If nil, no authentication is configured
	// and every request is served; otherwise the pages ask for an access
	// key or a token first, and /ui/api/* answers 401 without a session.
	Sessions *Sessions
	// Done, once closed, ends every live stream. A stream otherwise lasts
	// as long as its browser tab, and http.Server.Shutdown waits for it:
	// close Done when shutting down (http.Server.RegisterOnShutdown). If
	// nil, streams end only when their clients go away.
	Done <-chan struct{}
}

//go:embed static
var staticFS embed.FS

//go:embed templates
var templateFS embed.FS

var templates = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// asset is one embedded file with what serving it needs.
type asset struct {
	data        []byte
	contentType string
	etag        string
}

// contentTypes by extension: a fixed table, because mime.TypeByExtension
// reads the host's tables, which differ from machine to machine.
var contentTypes = map[string]string{
	".js":      "text/javascript; charset=utf-8",
	".css":     "text/css; charset=utf-8",
	".html":    "text/html; charset=utf-8",
	".svg":     "image/svg+xml",
	".png":     "image/png",
	".LICENSE": "text/plain; charset=utf-8",
}

func loadAssets() map[string]asset {
	assets := map[string]asset{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(data)
		assets[strings.TrimPrefix(p, "static/")] = asset{data: data, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("ui: reading the embedded assets: " + err.Error()) // the embed directive guarantees them
	}
	return assets
}

// handler serves the dashboard.
type handler struct {
	svc      kiln.Service
	clk      clock.Clock
	log      *slog.Logger
	sessions *Sessions
	done     <-chan struct{}
	assets   map[string]asset
}

// Handler returns the dashboard. Mount it at Prefix ("/ui/") without
// stripping the prefix: it serves /ui/ and every path below it.
//
//	GET  /ui/                      the overview of every endpoint
//	GET  /ui/endpoints/{name}      one endpoint: live charts, alarms, timeline
//	GET  /ui/static/...            the embedded scripts, styles and uPlot
//	GET  /ui/login, POST /ui/login the sign-in form, and the session cookie it sets
//	POST /ui/logout                ends the session and clears the cookie
//	GET  /ui/api/session           200 if the caller may use the dashboard, else 401
//	GET  /ui/api/events?endpoint=  the live stream of Snapshots (text/event-stream)
func Handler(cfg Config) http.Handler {
	h := &handler{svc: cfg.Service, clk: cfg.Clock, log: cfg.Logger, sessions: cfg.Sessions, done: cfg.Done, assets: loadAssets()}
	if h.clk == nil {
		h.clk = clock.Real()
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /ui/{$}", h.page)
	mux.HandleFunc("GET /ui/endpoints/{name}", h.page)
	mux.HandleFunc("GET /ui/static/{file...}", h.static)
	mux.HandleFunc("GET /ui/login", h.loginPage)
	mux.HandleFunc("POST /ui/login", h.login)
	mux.HandleFunc("POST /ui/logout", h.logout)
	mux.HandleFunc("GET /ui/api/session", h.requireAuth(h.session))
	mux.HandleFunc("GET /ui/api/events", h.requireAuth(h.events))
	mux.HandleFunc("/ui/api/", h.requireAuth(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, kiln.ENOTFOUND, "No such dashboard API: "+r.Method+" "+r.URL.Path+".")
	}))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 page not found", http.StatusNotFound)
	})
	return securityHeaders(mux)
}

// securityHeaders applies to every response of the dashboard. The pages load
// nothing from elsewhere, so the policy allows only this origin; uPlot sets
// element styles through the CSSOM, which style-src does not restrict.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

// page serves the shell every page starts from; the script reads the path.
func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	if ok, _ := h.authorized(r); !ok {
		http.Redirect(w, r, "/ui/login?next="+urlQueryEscape(r.URL.Path), http.StatusSeeOther)
		return
	}
	h.render(w, http.StatusOK, "index.html", struct{ Auth bool }{Auth: h.authRequired()})
}

func (h *handler) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("dashboard: rendering a page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// static serves an embedded asset. Assets are revalidated on every load
// (no-cache with a content hash as ETag), so a new Kiln never runs with a
// stale script and an unchanged one costs a 304.
func (h *handler) static(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}

// session answers 200 when the caller may use the dashboard (requireAuth
// answers 401 otherwise), so a page can tell an expired login from a
// network error.
func (h *handler) session(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		AuthRequired bool `json:"AuthRequired"`
	}{h.authRequired()})
}

// errorBody is the native API's error shape, so the pages handle one shape.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"code":"internal","message":"encoding the response failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

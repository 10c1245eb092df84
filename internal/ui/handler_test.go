package ui

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, c *http.Client, u string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// staticServer serves the dashboard without a service: enough for pages and
// assets, which do not touch it.
func staticServer(t *testing.T, sessions *Sessions) *httptest.Server {
	ts := httptest.NewServer(Handler(Config{Sessions: sessions}))
	t.Cleanup(ts.Close)
	return ts
}

func TestAssetsHaveTheirContentTypes(t *testing.T) {
	ts := staticServer(t, nil)
	for _, tc := range []struct{ path, ctype string }{
		{"/ui/static/js/app.js", "text/javascript; charset=utf-8"},
		{"/ui/static/js/endpoint.js", "text/javascript; charset=utf-8"},
		{"/ui/static/app.css", "text/css; charset=utf-8"},
		{"/ui/static/vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"},
		{"/ui/static/vendor/uPlot.min.css", "text/css; charset=utf-8"},
		{"/ui/static/favicon.svg", "image/svg+xml"},
		{"/ui/", "text/html; charset=utf-8"},
		{"/ui/endpoints/demo", "text/html; charset=utf-8"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, http.DefaultClient, ts.URL+tc.path)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if len(body) == 0 {
				t.Error("empty body")
			}
		})
	}
}

func TestAssetsRevalidateWithETag(t *testing.T) {
	ts := staticServer(t, nil)
	resp, _ := get(t, http.DefaultClient, ts.URL+"/ui/static/vendor/uPlot.iife.min.js")
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q; want an ETag and no-cache", etag, resp.Header.Get("Cache-Control"))
	}
	resp, body := get(t, http.DefaultClient, ts.URL+"/ui/static/vendor/uPlot.iife.min.js", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("with If-None-Match: status %d, %d bytes; want 304 and none", resp.StatusCode, len(body))
	}
}

func TestUnknownPathsAre404(t *testing.T) {
	ts := staticServer(t, nil)
	for _, p := range []string{"/ui/static/nope.js", "/ui/static/", "/ui/nope", "/ui/endpoints/", "/ui/api/nope"} {
		resp, _ := get(t, http.DefaultClient, ts.URL+p)
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
	}
	resp, _ := get(t, noRedirect, ts.URL+"/ui")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
}

var refRE = regexp.MustCompile(`(?:src|href)="([^"]*)"`)

// The pages load nothing from elsewhere: every script, style and icon they
// name is served by the dashboard itself.
func TestPagesLoadOnlyTheirOwnAssets(t *testing.T) {
	sessions := testSessions()
	ts := staticServer(t, sessions)
	session, _, _ := sessions.Login(nil, "K", "s3cr3t-of-kiln", "")
	pages := map[string]string{}
	_, pages["login"] = get(t, http.DefaultClient, ts.URL+"/ui/login")
	_, pages["index"] = get(t, http.DefaultClient, ts.URL+"/ui/", "Cookie", CookieName+"="+session)
	for name, html := range pages {
		if strings.Contains(html, `<script src="http`) || strings.Contains(html, `href="http`) || strings.Contains(html, `src="//`) {
			t.Errorf("%s page refers to another site:\n%s", name, html)
		}
		refs := refRE.FindAllStringSubmatch(html, -1)
		if len(refs) < 2 {
			t.Fatalf("%s page names %d assets; want its scripts and styles", name, len(refs))
		}
		for _, m := range refs {
			ref := m[1]
			if !strings.HasPrefix(ref, "/ui/") && !strings.HasPrefix(ref, "#") {
				t.Errorf("%s page refers to %q, outside the dashboard", name, ref)
				continue
			}
			if !strings.HasPrefix(ref, "/ui/static/") {
				continue
			}
			if resp, _ := get(t, http.DefaultClient, ts.URL+ref); resp.StatusCode != 200 {
				t.Errorf("%s page refers to %s, which answers %d", name, ref, resp.StatusCode)
			}
		}
	}
}

// The dashboard's own scripts and styles fetch nothing from other sites (the
// vendored uPlot names its home page in its licence comment only).
func TestOwnAssetsNameNoOtherSite(t *testing.T) {
	urlRE := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "static/vendor/") {
			return err
		}
		b, _ := staticFS.ReadFile(p)
		for _, m := range urlRE.FindAllString(string(b), -1) {
			if m == "http://www.w3.org" { // the SVG namespace, not a fetch
				continue
			}
			t.Errorf("%s names %s", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPagesSetAContentSecurityPolicy(t *testing.T) {
	ts := staticServer(t, nil)
	resp, _ := get(t, http.DefaultClient, ts.URL+"/ui/")
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
}

func TestWithoutAuthenticationEverythingIsServed(t *testing.T) {
	ts := staticServer(t, nil)
	resp, body := get(t, noRedirect, ts.URL+"/ui/")
	if resp.StatusCode != 200 || !strings.Contains(body, `data-auth="off"`) {
		t.Errorf("GET /ui/: %d, want the page with auth off", resp.StatusCode)
	}
	resp, _ = get(t, http.DefaultClient, ts.URL+"/ui/api/session")
	if resp.StatusCode != 200 {
		t.Errorf("GET /ui/api/session: %d, want 200", resp.StatusCode)
	}
}

// testSessions accepts the key ID "K" with the secret "s3cr3t-of-kiln" and
// hands out numbered sessions, which Logout ends.
func testSessions() *Sessions {
	var mu sync.Mutex
	live := map[string]bool{}
	n := 0
	return &Sessions{
		Login: func(r *http.Request, id, secret, token string) (string, time.Time, error) {
			mu.Lock()
			defer mu.Unlock()
			if !(id == "K" && secret == "s3cr3t-of-kiln" || token == "kiln1.good") {
				return "", time.Time{}, errors.New("not valid")
			}
			n++
			s := fmt.Sprintf("session-%d", n)
			live[s] = true
			return s, time.Now().Add(time.Hour), nil
		},
		Check: func(r *http.Request, s string) error {
			mu.Lock()
			defer mu.Unlock()
			if !live[s] {
				return errors.New("the session is not valid")
			}
			return nil
		},
		Logout: func(s string) {
			mu.Lock()
			defer mu.Unlock()
			delete(live, s)
		},
	}
}

func TestLoginSetsTheCookie(t *testing.T) {
	ts := staticServer(t, testSessions())

	// Unauthenticated: the pages send to the form, the API refuses.
	resp, _ := get(t, noRedirect, ts.URL+"/ui/endpoints/demo")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/ui/login?next=%2Fui%2Fendpoints%2Fdemo" {
		t.Errorf("GET a page: %d to %q, want 303 to the login form", resp.StatusCode, loc)
	}
	resp, body := get(t, http.DefaultClient, ts.URL+"/ui/login?next=/ui/endpoints/demo")
	if resp.StatusCode != 200 || !strings.Contains(body, `name="access_key_id"`) || !strings.Contains(body, `name="secret_access_key"`) ||
		!strings.Contains(body, `name="token"`) || !strings.Contains(body, `value="/ui/endpoints/demo"`) {
		t.Errorf("GET /ui/login: %d, want the sign-in form coming back to the page:\n%s", resp.StatusCode, body)
	}
	for _, p := range []string{"/ui/api/events?endpoint=demo", "/ui/api/session", "/ui/api/other"} {
		resp, body = get(t, http.DefaultClient, ts.URL+p)
		if resp.StatusCode != 401 || !strings.Contains(body, `"code":"unauthorized"`) {
			t.Errorf("GET %s: %d %s, want 401", p, resp.StatusCode, body)
		}
	}

	post := func(form url.Values, accept string) *http.Response {
		req, _ := http.NewRequest("POST", ts.URL+"/ui/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// A wrong secret or token: no cookie.
	for _, form := range []url.Values{{"access_key_id": {"K"}, "secret_access_key": {"wrong"}}, {"token": {"kiln1.bad"}}, {"access_key_id": {"K"}}} {
		resp = post(form, "application/json")
		if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
			t.Errorf("%v (script): %d with %d cookies, want 401 and none", form, resp.StatusCode, len(resp.Cookies()))
		}
	}
	resp = post(url.Values{"token": {"wrong"}, "next": {"/ui/endpoints/demo"}}, "")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/login?failed=1") || len(resp.Cookies()) != 0 {
		t.Errorf("wrong token (form): %d to %q, want back to the form without a cookie", resp.StatusCode, loc)
	}

	// The right key, or a token: an HttpOnly, SameSite=Strict cookie
	// holding the session, not the secret.
	resp = post(url.Values{"access_key_id": {"K"}, "secret_access_key": {"s3cr3t-of-kiln"}, "next": {"/ui/endpoints/demo"}}, "")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/ui/endpoints/demo" {
		t.Errorf("right key (form): %d to %q, want 303 to the page asked for", resp.StatusCode, loc)
	}
	if resp := post(url.Values{"token": {"kiln1.good"}}, "application/json"); resp.StatusCode != http.StatusNoContent {
		t.Errorf("a token (script): %d, want 204", resp.StatusCode)
	}
	resp = post(url.Values{"access_key_id": {"K"}, "secret_access_key": {"s3cr3t-of-kiln"}}, "application/json")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("right key (script): %d, want 204", resp.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("no %s cookie in %v", CookieName, resp.Header["Set-Cookie"])
	}
	if !strings.HasPrefix(cookie.Value, "session-") || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" ||
		cookie.MaxAge <= 0 || cookie.Secure {
		t.Errorf("cookie %+v, want the session, HttpOnly, SameSite=Strict, Path=/, an expiry, not Secure over HTTP", cookie)
	}

	withCookie := func(p string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", ts.URL+p, nil)
		req.AddCookie(cookie)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := withCookie("/ui/"); resp.StatusCode != 200 || !strings.Contains(body, `data-auth="on"`) || !strings.Contains(body, `action="/ui/logout"`) {
		t.Errorf("GET /ui/ with the cookie: %d, want the page with auth on and a sign-out button", resp.StatusCode)
	}
	if resp, _ := withCookie("/ui/api/session"); resp.StatusCode != 200 {
		t.Errorf("GET /ui/api/session with the cookie: %d, want 200", resp.StatusCode)
	}

	// Signing out ends the session and clears the cookie.
	req, _ := http.NewRequest("POST", ts.URL+"/ui/logout", nil)
	req.AddCookie(cookie)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].Name != CookieName || cs[0].MaxAge >= 0 {
		t.Errorf("logout set cookies %v, want %s expired", resp.Header["Set-Cookie"], CookieName)
	}
	if resp, _ := withCookie("/ui/api/session"); resp.StatusCode != 401 {
		t.Errorf("GET /ui/api/session with the signed-out cookie: %d, want 401", resp.StatusCode)
	}
}

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/ui/endpoints/demo", "/ui/endpoints/demo"},
		{"/ui/", "/ui/"},
		{"", "/ui/"},
		{"https://evil.example/ui/", "/ui/"},
		{"//evil.example/ui/", "/ui/"},
		{"/ui//evil.example", "/ui/"},
		{"/ui/\\evil", "/ui/"},
		{"/v1/endpoints", "/ui/"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestShares(t *testing.T) {
	w := func(name string, weight float64) kiln.VariantSummary {
		return kiln.VariantSummary{VariantName: name, CurrentWeight: weight}
	}
	f := func(id, variant string, share float64) kiln.Fleet {
		return kiln.Fleet{ID: id, VariantName: variant, TrafficShare: share}
	}
	for _, tc := range []struct {
		name string
		ep   kiln.Endpoint
		want Share
	}{
		{"no deployment", kiln.Endpoint{ProductionVariants: []kiln.VariantSummary{w("A", 1)}, Fleets: []kiln.Fleet{f("f1", "A", 1)}}, Share{Blue: 1}},
		{"canary", kiln.Endpoint{
			ProductionVariants: []kiln.VariantSummary{w("A", 1)},
			Fleets:             []kiln.Fleet{f("f1", "A", 0.75), f("f2", "A", 0.25)},
			Deployment:         &kiln.Deployment{Kind: kiln.DeployBlueGreen, Blue: []string{"f1"}, Green: []string{"f2"}},
		}, Share{Blue: 0.75, Green: 0.25}},
		{"two variants weighted", kiln.Endpoint{
			ProductionVariants: []kiln.VariantSummary{w("A", 3), w("B", 1)},
			Fleets:             []kiln.Fleet{f("f1", "A", 0.5), f("f3", "A", 0.5), f("f2", "B", 1)},
			Deployment:         &kiln.Deployment{Kind: kiln.DeployBlueGreen, Blue: []string{"f1", "f2"}, Green: []string{"f3"}},
		}, Share{Blue: 0.375 + 0.25, Green: 0.375}},
		{"zero weights count equally", kiln.Endpoint{
			ProductionVariants: []kiln.VariantSummary{w("A", 0), w("B", 0)},
			Fleets:             []kiln.Fleet{f("f1", "A", 1), f("f2", "B", 1)},
		}, Share{Blue: 1}},
		{"creation is not a move to green", kiln.Endpoint{
			ProductionVariants: []kiln.VariantSummary{w("A", 1)},
			Fleets:             []kiln.Fleet{f("f1", "A", 1)},
			Deployment:         &kiln.Deployment{Kind: kiln.DeployCreate, Green: []string{"f1"}},
		}, Share{Blue: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := shares(&tc.ep)
			if !near(got.Blue, tc.want.Blue) || !near(got.Green, tc.want.Green) {
				t.Errorf("shares = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestChartOf(t *testing.T) {
	alarm := func(metric, stat string, period int, threshold float64, dims ...string) *kiln.Alarm {
		a := &kiln.Alarm{Namespace: "AWS/SageMaker", MetricName: metric, Period: period, Threshold: threshold}
		if _, ok := kiln.ParsePercentile(stat); ok {
			a.ExtendedStatistic = stat
		} else {
			a.Statistic = stat
		}
		for i := 0; i+1 < len(dims); i += 2 {
			a.Dimensions = append(a.Dimensions, kiln.Dimension{Name: dims[i], Value: dims[i+1]})
		}
		return a
	}
	ep := []string{"EndpointName", "demo", "VariantName", "AllTraffic"}
	for _, tc := range []struct {
		name      string
		a         *kiln.Alarm
		chart     string
		threshold float64
	}{
		{"5xx sum per second", alarm("Invocation5XXErrors", "Sum", 1, 0, ep...), ChartErrors5XX, 0},
		{"4xx sum over 10s is a rate", alarm("Invocation4XXErrors", "Sum", 10, 50, ep...), ChartErrors4XX, 5},
		{"invocations", alarm("Invocations", "Sum", 60, 600, ep...), ChartInvocations, 10},
		{"latency p99 in ms", alarm("ModelLatency", "p99", 10, 250000, ep...), ChartLatency, 250},
		{"average error rate is not on a chart", alarm("Invocation5XXErrors", "Average", 1, 0.1, ep...), "", 0},
		{"another endpoint", alarm("Invocation5XXErrors", "Sum", 1, 0, "EndpointName", "other"), "", 0},
		{"no endpoint dimension", alarm("Invocation5XXErrors", "Sum", 1, 0), "", 0},
		{"model errors have no chart", alarm("InvocationModelErrors", "Sum", 1, 0, ep...), "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chart, th := chartOf(tc.a, "demo")
			if chart != tc.chart {
				t.Fatalf("chart %q, want %q", chart, tc.chart)
			}
			if chart != "" && (th == nil || !near(*th, tc.threshold)) {
				t.Errorf("threshold %v, want %v", th, tc.threshold)
			}
		})
	}
}

// Over HTTPS the session cookie is Secure as well, so that the browser
// never sends it over plain HTTP.
func TestLoginCookieSecureOverTLS(t *testing.T) {
	ts := httptest.NewTLSServer(Handler(Config{Sessions: testSessions()}))
	defer ts.Close()
	form := url.Values{"access_key_id": {"K"}, "secret_access_key": {"s3cr3t-of-kiln"}}
	req, _ := http.NewRequest("POST", ts.URL+"/ui/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusNoContent || len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Errorf("sign-in over TLS: %d, cookies %v, want one Secure, HttpOnly, SameSite=Strict cookie", resp.StatusCode, resp.Header["Set-Cookie"])
	}
}

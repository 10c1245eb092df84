package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

const chromiumPath = "/usr/bin/chromium"

// startBrowser starts a headless Chromium for the test, with the extra
// options, and returns the context of its one tab.
func startBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("KILN_REQUIRE_SERVERS") == "1" {
			t.Fatalf("Chromium is required for the dashboard test (apt-get install chromium): %v", err)
		}
		t.Skipf("Chromium not installed at %s; the dashboard test needs it", chromiumPath)
	}
	// Not t.TempDir: Chromium's helper processes may still write to their
	// profile for a moment after the browser is closed, which fails the
	// testing package's own removal. Remove it ourselves, retrying.
	profile, err := os.MkdirTemp("", "kiln-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1440, 900),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		for i := 0; i < 50; i++ {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1440, 900)); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// browserTab wraps the browser tab with helpers that fail the test.
type browserTab struct {
	t   *testing.T
	ctx context.Context
}

func (pg browserTab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	pg.t.Helper()
	if err := chromedp.Do(pg.ctx, actions...); err != nil {
		pg.t.Fatalf("%s: %v", what, err)
	}
}

// waitJS polls a JavaScript predicate every 100ms until it is true.
func (pg browserTab) waitJS(what string, timeout time.Duration, expr string) {
	pg.t.Helper()
	if _, err := chromedp.Run(pg.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		pg.t.Fatalf("waiting %v for %s: %v\n%s", timeout, what, err, pg.evalString(`JSON.stringify({greenShare: window.kiln && window.kiln.greenShare.slice(-40), errors: window.kiln && window.kiln.errors, page: document.querySelector('main') && document.querySelector('main').innerText.slice(0, 3000)})`))
	}
}

// shot saves a screenshot of the page as DIR/name.png when KILN_UI_SHOTS=DIR,
// to see what the test saw.
func (pg browserTab) shot(name string) {
	pg.t.Helper()
	dir := os.Getenv("KILN_UI_SHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(pg.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		pg.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		pg.t.Fatal(err)
	}
}

func (pg browserTab) evalString(expr string) string {
	s, err := chromedp.Run(pg.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		return fmt.Sprintf("(evaluating %q: %v)", expr, err)
	}
	return s
}

func evalJS[T any](pg browserTab, expr string) T {
	pg.t.Helper()
	v, err := chromedp.Run(pg.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		pg.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// dashboardLoad invokes an endpoint continuously from two goroutines until
// stopped, for at most ten minutes.
type dashboardLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func startDashboardLoad(p *kilnProc, endpoint string) *dashboardLoad {
	l := &dashboardLoad{stop: make(chan struct{})}
	deadline := time.Now().Add(10 * time.Minute)
	for w := 0; w < 2; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-l.stop:
					return
				case <-time.After(15 * time.Millisecond):
				}
				p.invoke(endpoint, body)
			}
		}()
	}
	return l
}

func (l *dashboardLoad) end() {
	close(l.stop)
	l.wg.Wait()
}

// The dashboard, as an operator uses it: the overview lists the endpoint,
// its page follows a canary to a failing model live (the share on green
// jumps, the alarm fires, the share drops back to 0), then the operator rolls
// back another update with the keyboard through the confirmation dialog, and
// a linear rollout draws its staircase.
func TestDashboard(t *testing.T) {
	ctx := startBrowser(t)
	pg := browserTab{t: t, ctx: ctx}
	p := startKiln(t, "")
	p.applyYAML(demoYAML("dash", 2))
	p.waitInService("dash", 60*time.Second)

	// kiln serve mounts the dashboard (internal/ui) at /ui/.
	resp, err := http.Get(p.url + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui/: %d %s; want the dashboard: the server must mount ui.Handler at /ui/", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// The overview lists the endpoint with its two healthy instances.
	pg.do("open the overview", chromedp.Navigate(p.url+"/ui/"))
	pg.waitJS("the endpoint on the overview", 15*time.Second, `document.querySelector('tr[data-endpoint="dash"]') !== null`)
	pg.waitJS("two healthy instances on the overview", 20*time.Second,
		`document.querySelectorAll('tr[data-endpoint="dash"] .chip-ok').length === 2`)
	pg.shot("1-overview")
	if got := evalJS[string](pg, `document.querySelector('tr[data-endpoint="dash"]').innerText`); !containsAll(got, "InService", "dash-v1", "AllTraffic") {
		t.Errorf("overview row says %q; want the status, the config and the variant", got)
	}

	// Its page opens from the overview and streams snapshots.
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`a[href="/ui/endpoints/dash"]`)))); err != nil {
		t.Fatalf("open the endpoint page from the overview: %v", err)
	}
	pg.waitJS("snapshots", 15*time.Second, `window.kiln && window.kiln.page === 'endpoint' && window.kiln.snapshots.length >= 2 && window.kiln.charts.share !== undefined`)

	p.mustCLI("alarms", "put", "dash-5xx", "--metric", "Invocation5XXErrors", "--endpoint", "dash", "--variant", "AllTraffic",
		"--statistic", "Sum", "--period", "1", "--evaluation-periods", "1", "--threshold", "0", "--comparison", "GreaterThanThreshold")
	traffic := startDashboardLoad(p, "dash")
	defer func() {
		if traffic != nil {
			traffic.end()
		}
	}()
	pg.waitJS("invocations on the chart", 20*time.Second,
		`window.kiln.snapshots.slice(-3).some(s => s.Fleets.some(f => f.Metrics.Invocations > 0))`)

	// A canary to the failing model: green gets traffic, the alarm fires,
	// and the rollback sends green's share back to 0.
	p.mustCLI("deploy", "dash", "--config", "dash-bad", "--canary", "50%", "--bake", "60s", "--alarm", "dash-5xx")
	pg.waitJS("the green share to rise above 0 and fall back to 0", 120*time.Second, `(() => {
		const g = window.kiln.greenShare;
		const up = g.findIndex(v => v > 0);
		return up >= 0 && g.slice(up).some(v => v === 0);
	})()`)
	pg.shot("2-canary-rolled-back")
	pg.waitJS("the alarm in ALARM on the page", 20*time.Second,
		`document.querySelector('[data-alarm="dash-5xx"] .transitions li[data-to="ALARM"]') !== null`)
	if !evalJS[bool](pg, `window.kiln.snapshots.some(s => s.Alarms.some(a => a.AlarmName === 'dash-5xx' && a.Watched && a.Chart === 'errors5xx' && a.ChartThreshold === 0)) &&
		window.kiln.charts.errors5xx.series.some(s => s.label && s.label.startsWith('dash-5xx threshold'))`) {
		t.Error("the alarm dash-5xx, watched by the deployment, has no threshold line on the 5xx chart")
	}
	pg.waitJS("the rollback on the timeline", 30*time.Second,
		`document.querySelector('#timeline li[data-phase="RolledBack"]') !== null`)
	p.waitInService("dash", 60*time.Second)
	if ep := p.endpoint("dash"); ep.EndpointConfigName != "dash-v1" {
		t.Fatalf("after the rollback the endpoint runs %s, want dash-v1", ep.EndpointConfigName)
	}

	// Another update, rolled back from the page with the keyboard.
	p.mustCLI("deploy", "dash", "--config", "dash-v2", "--canary", "50%", "--bake", "10m")
	pg.waitJS("the canary on green with the buttons enabled", 90*time.Second, `(() => {
		const s = window.kiln.snapshots[window.kiln.snapshots.length - 1];
		return s.Share.Green > 0 && s.Endpoint.Deployment && s.Endpoint.Deployment.Phase === 'Baking' &&
			!document.getElementById('rollback').disabled && !document.getElementById('stop').disabled;
	})()`)
	// The failed canary's banner is gone while the next update runs; the
	// timeline keeps it.
	if got := evalJS[string](pg, `document.getElementById('ep-failure').innerText`); got != "" {
		t.Errorf("while the next update runs, the page still shows the last one's outcome: %q", got)
	}
	// The overview says in words what the variant runs during the update:
	// the old fleet and the new one side by side, not "4/2 instances".
	tab, closeTab := chromedp.NewContext(ctx)
	ov := browserTab{t: t, ctx: tab}
	ov.do("open the overview in another tab", chromedp.Navigate(p.url+"/ui/"))
	ov.waitJS("the variant during the update", 15*time.Second, `(() => {
		const v = document.querySelector('tr[data-endpoint="dash"] [data-variant="AllTraffic"]');
		return v !== null && v.innerText.includes('running');
	})()`)
	if got := ov.evalString(`document.querySelector('tr[data-endpoint="dash"]').innerText`); strings.Contains(got, "/2 instances") || strings.Contains(got, "Last update failed") {
		t.Errorf("the overview during the update says %q; want the instance counts in words and no stale failure", got)
	}
	closeTab()

	// Escape closes the dialog and changes nothing.
	pg.do("open the stop dialog with the keyboard", chromedp.Focus(chromedp.ID("stop")), chromedp.KeyEvent(kb.Enter))
	pg.waitJS("the dialog open with Cancel focused", 5*time.Second,
		`document.getElementById('confirm').open && document.activeElement.id === 'confirm-cancel'`)
	pg.do("dismiss it", chromedp.KeyEvent(kb.Escape))
	pg.waitJS("the dialog closed, focus back on Stop", 5*time.Second,
		`!document.getElementById('confirm').open && document.activeElement.id === 'stop'`)
	if d := p.endpoint("dash").Deployment; d == nil || d.StopRequested || d.RollbackReason != "" {
		t.Fatalf("after Escape the deployment is %+v; want it going on", d)
	}

	// Roll back: Enter on the button, Tab to the dialog's Roll back, Enter.
	pg.do("open the rollback dialog", chromedp.Focus(chromedp.ID("rollback")), chromedp.KeyEvent(kb.Enter))
	pg.waitJS("the rollback dialog", 5*time.Second, `document.getElementById('confirm').open && document.getElementById('confirm-ok').textContent === 'Roll back'`)
	pg.do("confirm", chromedp.KeyEvent(kb.Tab))
	pg.waitJS("focus on the confirm button", 5*time.Second, `document.activeElement.id === 'confirm-ok'`)
	pg.shot("3-rollback-dialog")
	pg.do("press it", chromedp.KeyEvent(kb.Enter))
	p.waitInService("dash", 60*time.Second)
	ep := p.endpoint("dash")
	if ep.EndpointConfigName != "dash-v1" {
		t.Fatalf("after Roll back the endpoint runs %s, want dash-v1", ep.EndpointConfigName)
	}
	for _, f := range ep.Fleets {
		if f.EndpointConfigName != "dash-v1" || f.TrafficShare != 1 {
			t.Errorf("after Roll back fleet %+v; want dash-v1 with all the traffic", f)
		}
	}
	pg.waitJS("the page back on dash-v1 with 100% on blue", 10*time.Second, `(() => {
		const s = window.kiln.snapshots[window.kiln.snapshots.length - 1];
		const g = window.kiln.greenShare;
		return s.Endpoint.Deployment === undefined && s.Share.Blue === 1 && g[g.length - 1] === 0 &&
			document.getElementById('ep-config').textContent === 'dash-v1' &&
			document.getElementById('share-blue').dataset.value === '1' &&
			document.getElementById('deployment-none') !== null;
	})()`)
	pg.shot("4-rolled-back")
	// An operator's rollback is not a failure: a neutral notice says who.
	pg.waitJS("the operator's rollback notice", 10*time.Second, `document.querySelector('#ep-failure [data-kind="operator"]') !== null`)
	if got := evalJS[string](pg, `document.getElementById('ep-failure').innerText + ' | ' + document.getElementById('ep-failure').innerHTML`); strings.Contains(got, "because it was rolled back by operator") ||
		strings.Contains(got, "notice-bad") || !strings.Contains(got, "rolled back by an operator") {
		t.Errorf("after the operator's rollback the page says %q; want a neutral notice that an operator rolled it back", got)
	}
	pg.waitJS("the operator's rollback on the timeline, in neutral colours", 10*time.Second,
		`(() => { const li = document.querySelector('#timeline li[data-phase="RolledBack"]'); return li !== null && li.dataset.kind === 'info' && li.innerText.includes('by operator'); })()`)
	if got := evalJS[[]string](pg, `[...document.querySelectorAll('#timeline li[data-phase="RolledBack"]')].map(li => li.dataset.kind)`); len(got) != 2 || got[1] != "bad" {
		t.Errorf("the timeline's rollbacks are %v; want the operator's (newest) neutral and the alarm's bad", got)
	}
	if errs := evalJS[[]string](pg, `window.kiln.errors`); len(errs) > 0 {
		t.Errorf("the page reported errors: %v", errs)
	}
	traffic.end()
	traffic = nil
	p.mustCLI("delete", "endpoint", "dash")

	// A linear rollout over four instances draws a staircase.
	p.applyYAML(demoYAML("lin", 4))
	p.waitInService("lin", 60*time.Second)
	p.mustCLI("alarms", "put", "lin-5xx", "--metric", "Invocation5XXErrors", "--endpoint", "lin", "--variant", "AllTraffic",
		"--statistic", "Sum", "--period", "1", "--evaluation-periods", "1", "--threshold", "0", "--comparison", "GreaterThanThreshold")
	// An alarm on the endpoint's latency that the rollout does not watch: the
	// page shows it and draws its threshold, and a slow machine cannot make
	// it roll the rollout back.
	p.mustCLI("alarms", "put", "lin-p99", "--metric", "ModelLatency", "--endpoint", "lin", "--variant", "AllTraffic",
		"--statistic", "p99", "--period", "5", "--evaluation-periods", "1", "--threshold", "100000", "--comparison", "GreaterThanThreshold")
	pg.do("open the linear endpoint", chromedp.Navigate(p.url+"/ui/endpoints/lin"))
	pg.waitJS("snapshots of lin", 15*time.Second, `window.kiln.snapshots.length >= 1`)
	traffic = startDashboardLoad(p, "lin")
	time.Sleep(8 * time.Second) // a few seconds of steady traffic before the rollout
	p.mustCLI("deploy", "lin", "--config", "lin-v2", "--linear", "25%", "--bake", "4s", "--alarm", "lin-5xx")
	pg.waitJS("three quarters of the traffic on green", 120*time.Second,
		`window.kiln.snapshots[window.kiln.snapshots.length - 1].Share.Green >= 0.75`)
	if os.Getenv("KILN_UPDATE_SCREENSHOT") == "1" {
		time.Sleep(2 * time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		out := filepath.Join("..", "..", "docs", "img", "dashboard.png")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", out)
	}
	p.waitInService("lin", 90*time.Second)
	if ep := p.endpoint("lin"); ep.EndpointConfigName != "lin-v2" {
		t.Fatalf("after the linear rollout the endpoint runs %s, want lin-v2", ep.EndpointConfigName)
	}
	pg.waitJS("the end of the rollout on the page", 10*time.Second,
		`window.kiln.snapshots[window.kiln.snapshots.length - 1].Endpoint.Deployment === undefined`)
	steps := evalJS[[]float64](pg, `(() => {
		const g = window.kiln.greenShare;
		const seen = [];
		for (const v of g) if (v > 0 && v < 1 && !seen.includes(v)) seen.push(v);
		return seen;
	})()`)
	if len(steps) < 3 {
		t.Errorf("green share went through %v; want the staircase of at least three steps between 0 and 1", steps)
	}
	for i := 1; i < len(steps); i++ {
		if steps[i] < steps[i-1] {
			t.Errorf("green share steps %v do not rise", steps)
			break
		}
	}
	if errs := evalJS[[]string](pg, `window.kiln.errors`); len(errs) > 0 {
		t.Errorf("the page reported errors: %v", errs)
	}
	if d := p.endpoint("lin").Deployment; d != nil {
		t.Errorf("deployment still in progress: %+v", d)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// With credentials configured, the dashboard asks for an access key (or a
// token): a wrong one is refused on the form, the right one gets the tab a
// session cookie that is not the secret (HttpOnly, SameSite=Strict, with an
// expiry) and the page keeps nothing itself; the pages' API calls go with
// the cookie; signing out ends the session on the server, not only in the
// browser.
func TestDashboardSignIn(t *testing.T) {
	ctx := startBrowser(t)
	pg := browserTab{t: t, ctx: ctx}
	const secret = "dashboard-test-secret-0123456789"
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[ui]\naws_access_key_id = KILNUITEST\naws_secret_access_key = "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startKiln(t, "", "--credentials-file", creds)

	pg.do("open the dashboard", chromedp.Navigate(p.url+"/ui/"))
	pg.waitJS("the sign-in form", 10*time.Second, `location.pathname === '/ui/login' && document.getElementById('access_key_id') !== null`)

	pg.do("sign in with a wrong secret", chromedp.SendKeys(chromedp.ID("access_key_id"), "KILNUITEST"), chromedp.SendKeys(chromedp.ID("secret_access_key"), "not-the-secret-at-all"),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)))
	pg.waitJS("the refusal", 10*time.Second, `!document.getElementById('login-error').hidden && location.pathname === '/ui/login'`)

	pg.do("sign in with the right secret", chromedp.SendKeys(chromedp.ID("secret_access_key"), secret))
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)))); err != nil {
		t.Fatalf("submit the form: %v", err)
	}
	pg.waitJS("the overview, read through the API with the session cookie", 10*time.Second,
		`location.pathname === '/ui/' && document.getElementById('overview') !== null && document.getElementById('overview').innerText.includes('No endpoints yet')`)
	if got := evalJS[int](pg, `sessionStorage.length + localStorage.length`); got != 0 {
		t.Errorf("the page keeps %d items in web storage, want none", got)
	}
	if evalJS[bool](pg, `document.cookie.includes('kiln_session')`) {
		t.Error("the kiln_session cookie is readable from scripts; want HttpOnly")
	}
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.url}})
	cookies := res.Cookies
	if err != nil {
		t.Fatalf("read the browser's cookies: %v", err)
	}
	var sess *network.Cookie
	for _, c := range cookies {
		if c.Name == "kiln_session" {
			sess = c
		}
	}
	if sess == nil {
		t.Fatalf("no kiln_session cookie among %d", len(cookies))
	}
	expires := time.Unix(int64(sess.Expires), 0)
	if strings.Contains(sess.Value, secret) || !sess.HTTPOnly || sess.SameSite != network.CookieSameSiteStrict || sess.Session ||
		time.Until(expires) > 12*time.Hour+time.Minute || time.Until(expires) < 11*time.Hour {
		t.Errorf("session cookie %+v (expires %s), want HttpOnly, SameSite=Strict, 12h, without the secret", sess, expires)
	}
	nativeWith := func(cookie string) int {
		req, _ := http.NewRequest("GET", p.url+"/v1/endpoints", nil)
		req.AddCookie(&http.Cookie{Name: "kiln_session", Value: cookie})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := nativeWith(sess.Value); got != 200 {
		t.Errorf("the native API with the session cookie: %d, want 200", got)
	}
	session := func(creds string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('/ui/api/session', {credentials: '`+creds+`'}).then(r => r.status)`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("fetch /ui/api/session: %v", err)
		}
		return n
	}
	if got := session("same-origin"); got != 200 {
		t.Errorf("the dashboard's API with the cookie: %d, want 200", got)
	}
	if got := session("omit"); got != 401 {
		t.Errorf("the dashboard's API without the cookie: %d, want 401", got)
	}

	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`#logout button`)))); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	pg.waitJS("the sign-in form again", 10*time.Second, `location.pathname === '/ui/login'`)
	if got := session("same-origin"); got != 401 {
		t.Errorf("the dashboard's API after signing out: %d, want 401", got)
	}
	// The session is over on the server too: a copy of the cookie is refused.
	if got := nativeWith(sess.Value); got != 401 {
		t.Errorf("the native API with the signed-out session's cookie: %d, want 401", got)
	}
}

// A session ends when it expires: signed in with a token that lasts 10
// seconds, the tab is sent back to the sign-in form once it has expired,
// and the server refuses the session's cookie.
func TestDashboardSessionExpires(t *testing.T) {
	ctx := startBrowser(t)
	pg := browserTab{t: t, ctx: ctx}
	const secret = "dashboard-test-secret-0123456789"
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[ui]\naws_access_key_id = KILNUITEST\naws_secret_access_key = "+secret+"\nkiln_role = read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startKiln(t, "", "--credentials-file", creds)
	tok := strings.TrimSpace(p.mustCLI("token", "--ttl", "10s", "--access-key-id", "KILNUITEST", "--secret-access-key", secret))

	pg.do("open the dashboard", chromedp.Navigate(p.url+"/ui/"))
	pg.waitJS("the sign-in form", 10*time.Second, `location.pathname === '/ui/login' && document.getElementById('token') !== null`)
	pg.do("sign in with the token", chromedp.SendKeys(chromedp.ID("token"), tok))
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)))); err != nil {
		t.Fatalf("submit the form: %v", err)
	}
	pg.waitJS("the overview", 10*time.Second, `location.pathname === '/ui/' && document.getElementById('overview') !== null`)
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.url}})
	cookies := res.Cookies
	if err != nil {
		t.Fatalf("read the browser's cookies: %v", err)
	}
	value := ""
	for _, c := range cookies {
		if c.Name == "kiln_session" {
			value = c.Value
		}
	}
	// The session ends with the token it came from.
	fields := strings.Split(tok, ".")
	exp, err := strconv.ParseInt(fields[len(fields)-2], 10, 64)
	if err != nil {
		t.Fatalf("token %q: %v", tok, err)
	}
	time.Sleep(time.Until(time.Unix(exp+1, 0)))
	pg.do("reload", chromedp.Navigate(p.url+"/ui/"))
	pg.waitJS("the sign-in form after the session expired", 10*time.Second, `location.pathname === '/ui/login'`)
	req, _ := http.NewRequest("GET", p.url+"/ui/api/session", nil)
	req.AddCookie(&http.Cookie{Name: "kiln_session", Value: value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if value == "" || resp.StatusCode != 401 {
		t.Errorf("the expired session's cookie %q: %d, want 401", value, resp.StatusCode)
	}
}

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/kiln-serve/kiln"
)

// attackerPage is a web page of another origin that tries to drive the Kiln
// at the address it is given, as any page its user opens could: requests a
// page may send to another origin without a CORS preflight (fetch in no-cors
// mode with a Blob or a form body, and real form posts), whose answers the
// browser hides from the page but whose effects would be done.
const attackerPage = `<!doctype html>
<html><head><title>cute cats</title></head><body>
<iframe name="sink"></iframe>
<script>
function formPost(action, fields) {
  const f = document.createElement('form');
  f.method = 'POST';
  f.action = action;
  f.target = 'sink';
  for (const [k, v] of Object.entries(fields)) {
    const i = document.createElement('input');
    i.type = 'hidden';
    i.name = k;
    i.value = v;
    f.appendChild(i);
  }
  document.body.appendChild(f);
  const frame = document.querySelector('iframe[name=sink]');
  const done = new Promise(resolve => {
    frame.onload = () => resolve('loaded');
    setTimeout(() => resolve('no load event'), 5000);
  });
  f.submit();
  return done;
}

async function blind(url, init) {
  try {
    await fetch(url, Object.assign({mode: 'no-cors', credentials: 'include'}, init));
    return 'answered';
  } catch (e) {
    return 'failed: ' + e.message;
  }
}

// A Blob without a type: fetch sends no Content-Type, so no preflight.
const blob = v => new Blob([JSON.stringify(v)]);

window.attack = async function(kiln, image) {
  const out = {};
  out.model = await blind(kiln + '/v1/models', {method: 'POST',
    body: blob({ModelName: 'evil', PrimaryContainer: {Image: image}})});
  out.config = await blind(kiln + '/v1/endpoint-configs', {method: 'POST',
    body: blob({EndpointConfigName: 'evil', ProductionVariants: [{VariantName: 'AllTraffic', ModelName: 'evil', InitialInstanceCount: 1}]})});
  out.endpoint = await blind(kiln + '/v1/endpoints', {method: 'POST',
    body: blob({EndpointName: 'evil', EndpointConfigName: 'evil'})});
  out.alarmFetch = await blind(kiln + '/', {method: 'POST', body: new URLSearchParams({
    Action: 'PutMetricAlarm', Version: '2010-08-01', AlarmName: 'evil-fetch', Namespace: 'AWS/SageMaker',
    MetricName: 'Invocations', Statistic: 'Sum', Period: '60', EvaluationPeriods: '1', Threshold: '1',
    ComparisonOperator: 'GreaterThanThreshold'})});
  out.alarmForm = await formPost(kiln + '/', {
    Action: 'PutMetricAlarm', Version: '2010-08-01', AlarmName: 'evil-form', Namespace: 'AWS/SageMaker',
    MetricName: 'Invocations', Statistic: 'Sum', Period: '60', EvaluationPeriods: '1', Threshold: '1',
    ComparisonOperator: 'GreaterThanThreshold'});
  out.setStateFetch = await blind(kiln + '/', {method: 'POST', body: new URLSearchParams({
    Action: 'SetAlarmState', Version: '2010-08-01', AlarmName: 'web-alarm', StateValue: 'ALARM', StateReason: 'forged by fetch'})});
  out.setStateForm = await formPost(kiln + '/', {
    Action: 'SetAlarmState', Version: '2010-08-01', AlarmName: 'web-alarm', StateValue: 'ALARM', StateReason: 'forged by a form'});
  out.invoke = await blind(kiln + '/endpoints/web/invocations', {method: 'POST', body: '{"instances": [[1, 2, 3, 4]]}'});
  out.stop = await blind(kiln + '/v1/endpoints/web/stop', {method: 'POST'});
  out.rollback = await blind(kiln + '/v1/endpoints/web/rollback', {method: 'POST'});
  out.stopForm = await formPost(kiln + '/v1/endpoints/web/stop', {});
  out.login = await formPost(kiln + '/ui/login', {token: 'attacker-token-0123456789', next: '/ui/'});
  out.logout = await formPost(kiln + '/ui/logout', {});
  return JSON.stringify(out);
};
</script>
</body></html>`

// startTarget starts the Kiln the attacks aim at: the endpoint web, the
// alarm web-alarm, and an update of web baking for 10 minutes, so that a
// forged stop or rollback would show.
func startTarget(t *testing.T) *kilnProc {
	t.Helper()
	p := startKiln(t, "")
	p.applyYAML(demoYAML("web", 1))
	p.waitInService("web", 60*time.Second)
	p.mustCLI("alarms", "put", "web-alarm", "--metric", "Invocation5XXErrors", "--endpoint", "web", "--variant", "AllTraffic",
		"--statistic", "Sum", "--period", "60", "--evaluation-periods", "1", "--threshold", "1000", "--comparison", "GreaterThanThreshold")
	p.mustCLI("deploy", "web", "--config", "web-v2", "--canary", "50%", "--bake", "10m")
	waitFor(t, 90*time.Second, "the update to bake", func() bool {
		d := p.endpoint("web").Deployment
		return d != nil && d.Phase == kiln.PhaseBaking
	})
	return p
}

// TestBrowserCannotDriveKiln: a web page of another origin (another port of
// 127.0.0.1), opened in a real Chromium, tries every request that drives a
// default Kiln (no credentials): create a model whose Image is a command,
// its endpoint config and endpoint; create alarms and set an alarm's state
// through CloudWatch's form protocol; invoke; stop and roll back a
// deployment; post to the dashboard's sign-in and sign-out. None has any
// effect, and Kiln says why it refused each.
func TestBrowserCannotDriveKiln(t *testing.T) {
	ctx := startBrowser(t)
	p := startTarget(t)

	marker := filepath.Join(t.TempDir(), "pwned")
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, attackerPage)
	}))
	defer attacker.Close()

	pg := browserTab{t: t, ctx: ctx}
	pg.do("open the attacker's page", chromedp.Navigate(attacker.URL+"/"))
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`window.attack(%q, %q)`, p.url, "/usr/bin/touch "+marker), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run the attacks: %v", err)
	}
	t.Logf("the page saw: %s", got)

	assertNothingWritten(t, p, marker)
	// Each attack was refused by the guard, not failed by chance.
	logs := p.logs.String()
	for _, path := range []string{"/v1/models", "/v1/endpoint-configs", "/v1/endpoints", "/endpoints/web/invocations",
		"/v1/endpoints/web/stop", "/v1/endpoints/web/rollback", "/ui/login", "/ui/logout"} {
		if !strings.Contains(logs, `msg="refused a request" status=403 method=POST path=`+path+" ") {
			t.Errorf("Kiln did not log the refusal of POST %s", path)
		}
	}
	if n := strings.Count(logs, `msg="refused a request" status=403 method=POST path=/ `); n != 4 {
		t.Errorf("Kiln logged %d refusals of CloudWatch's form posts, want 4", n)
	}
}

// assertNothingWritten checks that none of attackerPage's requests took
// effect on p.
func assertNothingWritten(t *testing.T, p *kilnProc, marker string) {
	t.Helper()
	bg := context.Background()
	notFound := func(what string, err error) {
		t.Helper()
		var ke *kiln.Error
		if !errors.As(err, &ke) || ke.Code != kiln.ENOTFOUND {
			t.Errorf("%s: got %v, want it not to exist", what, err)
		}
	}
	_, err := p.client.GetModel(bg, "evil")
	notFound("the model evil", err)
	_, err = p.client.GetEndpointConfig(bg, "evil")
	notFound("the endpoint config evil", err)
	_, err = p.client.GetEndpoint(bg, "evil")
	notFound("the endpoint evil", err)
	for _, a := range []string{"evil-fetch", "evil-form", "evil-rebound"} {
		_, err = p.client.GetAlarm(bg, a)
		notFound("the alarm "+a, err)
	}
	hist, err := p.client.AlarmHistory(bg, "web-alarm")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hist {
		if strings.Contains(h.HistorySummary+h.HistoryData, "forged") {
			t.Errorf("the alarm web-alarm changed state on a forged request: %+v", h)
		}
	}
	if d := p.endpoint("web").Deployment; d == nil || d.StopRequested || d.RollbackReason != "" {
		t.Errorf("the update of web is now %+v; want it baking, neither stopped nor rolled back", d)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the attacker's Image ran: %s exists (%v)", marker, err)
	}
}

// TestDNSRebindingRefused: a name the attacker controls, resolved to
// 127.0.0.1, makes the attacker's page of the same origin as Kiln, to the
// browser; Kiln must refuse it by its Host header. From a plain client
// (any request, on a fresh connection and on one the gateway took over for
// its invocations) and from Chromium, whose resolver maps attacker.test to
// 127.0.0.1 (a page there reads and writes with same-origin requests).
func TestDNSRebindingRefused(t *testing.T) {
	p := startTarget(t)
	marker := filepath.Join(t.TempDir(), "pwned")

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
	send := func(method, path, host, contentType, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, p.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if strings.HasPrefix(contentType, "application/x-amz-json") {
			req.Header.Set("X-Amz-Target", "SageMaker.ListModels")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s (Host %s): %v", method, path, host, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const rebound = "attacker.example"
	for _, c := range []struct{ method, path, ct, body string }{
		{"GET", "/v1/models", "", ""},
		{"GET", "/v1/endpoints/web/logs", "", ""},
		{"POST", "/v1/models", "application/json", `{"ModelName": "evil", "PrimaryContainer": {"Image": "/usr/bin/touch ` + marker + `"}}`},
		{"POST", "/v1/endpoints/web/stop", "", ""},
		{"POST", "/", "application/x-amz-json-1.1", "{}"},
		{"POST", "/", "application/x-www-form-urlencoded", "Action=PutMetricAlarm&Version=2010-08-01&AlarmName=evil-rebound&Namespace=N&MetricName=M&Statistic=Sum&Period=60&EvaluationPeriods=1&Threshold=1&ComparisonOperator=GreaterThanThreshold"},
		{"GET", "/ui/", "", ""},
		{"GET", "/ui/api/events?endpoint=web", "", ""},
		{"GET", "/metrics", "", ""},
		{"POST", "/endpoints/web/invocations", "application/json", `{"instances": [[1, 2, 3, 4]]}`},
	} {
		status, body := send(c.method, c.path, rebound+":"+strings.Split(p.addr, ":")[1], c.ct, c.body)
		if status != http.StatusMisdirectedRequest || !strings.Contains(body, "--allowed-host "+rebound) {
			t.Errorf("%s %s with Host %s: got %d %.300s, want 421 naming the host and --allowed-host", c.method, c.path, rebound, status, body)
		}
	}
	// An invocation on a connection the gateway took over from net/http
	// (the first invocation on it) is checked by the gateway itself.
	if status, body := send("POST", "/endpoints/web/invocations", p.addr, "application/json", `{"instances": [[1, 2, 3, 4]]}`); status != 200 {
		t.Fatalf("an invocation from 127.0.0.1: %d %s", status, body)
	}
	if status, body := send("POST", "/endpoints/web/invocations", rebound, "application/json", `{"instances": [[1, 2, 3, 4]]}`); status != http.StatusMisdirectedRequest {
		t.Errorf("an invocation with Host %s on a connection the gateway serves: got %d %.300s, want 421", rebound, status, body)
	}
	if status, body := send("POST", "/endpoints/web/invocations", "localhost", "application/json", `{"instances": [[1, 2, 3, 4]]}`); status != 200 {
		t.Errorf("an invocation with Host localhost after the refusal: %d %s", status, body)
	}
	if status, _ := send("GET", "/v1/models", "localhost", "", ""); status != 200 {
		t.Errorf("GET /v1/models with Host localhost: %d, want 200", status)
	}

	// The same from Chromium: a page of http://attacker.test:PORT, which the
	// attacker served before its name turned to 127.0.0.1, runs same-origin
	// requests. (Kiln answers its own 421 for the page; the script runs in
	// that origin all the same.)
	ctx := startBrowser(t, chromedp.Flag("host-resolver-rules", "MAP attacker.test 127.0.0.1"))
	pg := browserTab{t: t, ctx: ctx}
	port := strings.Split(p.addr, ":")[1]
	pg.do("open the rebound page", chromedp.Navigate("http://attacker.test:"+port+"/cats"))
	if origin := evalJS[string](pg, `location.origin`); origin != "http://attacker.test:"+port {
		t.Fatalf("the page is at %s; the resolver rule did not apply", origin)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const status = async (path, init) => {
			try { return (await fetch(path, init)).status; } catch (e) { return 'failed: ' + e.message; }
		};
		const json = {'Content-Type': 'application/json'};
		return JSON.stringify([
			await status('/v1/models'),
			await status('/v1/endpoints/web'),
			await status('/v1/models', {method: 'POST', headers: json, body: JSON.stringify({ModelName: 'evil', PrimaryContainer: {Image: '/usr/bin/touch `+marker+`'}})}),
			await status('/v1/endpoints/web/rollback', {method: 'POST'}),
			await status('/endpoints/web/invocations', {method: 'POST', headers: json, body: '{"instances": [[1, 2, 3, 4]]}'}),
			await status('/ui/api/session'),
		]);
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run the rebound page's requests: %v", err)
	}
	if want := `[421,421,421,421,421,421]`; got != want {
		t.Errorf("the rebound page's requests got %s, want %s", got, want)
	}
	assertNothingWritten(t, p, marker)
}

// TestBrowserCannotSignInOrOutCrossSite: with credentials, the dashboard
// keeps its sign-in in a SameSite=Strict cookie; but another port of
// 127.0.0.1 is the same site, so the browser sends that cookie with a form
// a page there posts, and takes the cookie of the answer. Such a page must
// neither sign the user out nor sign the browser in with a key of the
// attacker's (login CSRF, which would have the user work under the
// attacker's key).
func TestBrowserCannotSignInOrOutCrossSite(t *testing.T) {
	ctx := startBrowser(t)
	pg := browserTab{t: t, ctx: ctx}
	const secret, attackerSecret = "browser-test-secret-0123456789", "attacker-secret-0123456789"
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[user]\naws_access_key_id = KILNUSER\naws_secret_access_key = "+secret+
		"\n[other]\naws_access_key_id = KILNOTHER\naws_secret_access_key = "+attackerSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startKiln(t, "", "--credentials-file", creds)
	cookie := func() string {
		t.Helper()
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.url + "/ui/"}})
		if err != nil {
			t.Fatalf("read the cookies: %v", err)
		}
		for _, c := range res.Cookies {
			if c.Name == "kiln_session" {
				return c.Value
			}
		}
		return ""
	}

	pg.do("open the dashboard", chromedp.Navigate(p.url+"/ui/"))
	pg.waitJS("the sign-in form", 10*time.Second, `location.pathname === '/ui/login' && document.getElementById('access_key_id') !== null`)
	pg.do("type the access key", chromedp.SendKeys(chromedp.ID("access_key_id"), "KILNUSER"), chromedp.SendKeys(chromedp.ID("secret_access_key"), secret))
	submitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(submitCtx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)))); err != nil {
		t.Fatalf("submit the form: %v", err)
	}
	pg.waitJS("the overview", 10*time.Second, `location.pathname === '/ui/'`)
	session := cookie()
	if session == "" {
		t.Fatal("after signing in the browser holds no kiln_session cookie")
	}

	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, attackerPage)
	}))
	defer attacker.Close()
	pg.do("open the attacker's page", chromedp.Navigate(attacker.URL+"/"))
	post := func(path, fields string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`formPost(%q + %q, %s)`, p.url, path, fields), chromedp.EvalAwaitPromise)); err != nil {
			t.Fatalf("post %s: %v", path, err)
		}
	}
	post("/ui/login", fmt.Sprintf(`{access_key_id: 'KILNOTHER', secret_access_key: %q, next: '/ui/'}`, attackerSecret))
	if got := cookie(); got != session {
		t.Errorf("after the page's sign-in the session cookie is %q, want the user's session %q still", got, session)
	}
	post("/ui/logout", `{}`)
	if got := cookie(); got != session {
		t.Errorf("after the page's sign-out the session cookie is %q, want the user's session %q still", got, session)
	}
	// The session the page tried to end still works.
	pg.do("open the dashboard again", chromedp.Navigate(p.url+"/ui/"))
	pg.waitJS("the overview, still signed in", 10*time.Second, `location.pathname === '/ui/' && document.getElementById('overview') !== null`)
}

// TestAllowedHost: kiln serve --allowed-host (and KILN_ALLOWED_HOSTS) adds
// the names Kiln answers to; "*" needs credentials.
func TestAllowedHost(t *testing.T) {
	p := startKiln(t, "", "--allowed-host", "kiln.test,.corp.example")
	status := func(host string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", p.url+"/v1/models", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for host, want := range map[string]int{
		"kiln.test:8080": 200, "KILN.TEST": 200, "corp.example": 200, "a.b.corp.example": 200,
		"localhost": 200, "127.0.0.1": 200,
		"other.test": 421, "kiln.test.attacker.example": 421, "xcorp.example": 421,
	} {
		if got := status(host); got != want {
			t.Errorf("Host %s: got %d, want %d", host, got, want)
		}
	}

	cmd := exec.Command(kilnBin, "serve", "--addr", freeAddr(t), "--data-dir", t.TempDir(), "--allowed-host", "*")
	cmd.Env = append(os.Environ(), "KILN_ACCESS_KEY_ID=", "KILN_SECRET_ACCESS_KEY=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "needs credentials") {
		t.Errorf("kiln serve --allowed-host '*' without credentials: %v %s; want a refusal to start", err, out)
	}
	cmd = exec.Command(kilnBin, "serve", "--addr", freeAddr(t), "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "KILN_ALLOWED_HOSTS=http://kiln.test")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a URL") {
		t.Errorf("KILN_ALLOWED_HOSTS=http://kiln.test: %v %s; want a refusal to start that names the problem", err, out)
	}
}

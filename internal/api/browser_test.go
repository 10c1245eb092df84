package api

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	const own = "127.0.0.1:8080"
	type hdr = map[string]string
	cases := []struct {
		name   string
		cfg    GuardConfig
		method string
		path   string
		host   string
		header hdr
		body   string
		want   int // 0: let through
	}{
		// Host: loopback names and addresses, the listen address, the list.
		{name: "loopback IPv4", method: "GET", path: "/v1/models", host: own},
		{name: "loopback IPv4 other", method: "GET", path: "/v1/models", host: "127.3.2.1:8080"},
		{name: "loopback IPv6", method: "GET", path: "/v1/models", host: "[::1]:8080"},
		{name: "localhost", method: "GET", path: "/v1/models", host: "localhost:8080"},
		{name: "localhost upper case, final dot", method: "GET", path: "/v1/models", host: "LocalHost.:8080"},
		{name: "subdomain of localhost", method: "GET", path: "/v1/models", host: "kiln.localhost:8080"},
		{name: "no port", method: "GET", path: "/ui/", host: "localhost"},
		{name: "no Host (HTTP/1.0)", method: "GET", path: "/v1/models", host: ""},
		{name: "rebound name", method: "GET", path: "/v1/models", host: "attacker.example:8080", want: 421},
		{name: "rebound name on the dashboard", method: "GET", path: "/ui/", host: "attacker.example", want: 421},
		{name: "rebound name on healthz", method: "GET", path: "/healthz", host: "attacker.example", want: 421},
		{name: "rebound name on an invocation", method: "POST", path: "/endpoints/e/invocations", host: "attacker.example:8080", header: hdr{"Content-Type": "application/json"}, body: "{}", want: 421},
		{name: "rebound name on the AWS API", method: "POST", path: "/", host: "attacker.example:8080", header: hdr{"X-Amz-Target": "SageMaker.ListModels"}, body: "{}", want: 421},
		{name: "localhost as a prefix", method: "GET", path: "/v1/models", host: "localhost.attacker.example", want: 421},
		{name: "a LAN address, listening on loopback", method: "GET", path: "/v1/models", host: "192.168.1.5:8080", want: 421},
		{name: "the listen address", cfg: GuardConfig{Addr: "192.168.1.5:8080"}, method: "GET", path: "/v1/models", host: "192.168.1.5:8080"},
		{name: "the listen name", cfg: GuardConfig{Addr: "kiln.lan:8080"}, method: "GET", path: "/v1/models", host: "KILN.lan:8080"},
		{name: "any IP when listening on all", cfg: GuardConfig{Addr: "0.0.0.0:8080"}, method: "GET", path: "/v1/models", host: "10.1.2.3:8080"},
		{name: "any IPv6 when listening on all", cfg: GuardConfig{Addr: ":8080"}, method: "GET", path: "/v1/models", host: "[2001:db8::1]:8080"},
		{name: "but no name when listening on all", cfg: GuardConfig{Addr: "0.0.0.0:8080"}, method: "GET", path: "/v1/models", host: "attacker.example", want: 421},
		{name: "an allowed name", cfg: GuardConfig{AllowedHosts: []string{"kiln.example.com"}}, method: "GET", path: "/v1/models", host: "kiln.example.com"},
		{name: "an allowed name with a port", cfg: GuardConfig{AllowedHosts: []string{"kiln.example.com:443"}}, method: "GET", path: "/v1/models", host: "kiln.example.com:8080"},
		{name: "not a subdomain of an allowed name", cfg: GuardConfig{AllowedHosts: []string{"kiln.example.com"}}, method: "GET", path: "/v1/models", host: "a.kiln.example.com", want: 421},
		{name: "an allowed domain", cfg: GuardConfig{AllowedHosts: []string{".example.com"}}, method: "GET", path: "/v1/models", host: "a.b.example.com"},
		{name: "an allowed domain itself", cfg: GuardConfig{AllowedHosts: []string{".example.com"}}, method: "GET", path: "/v1/models", host: "example.com"},
		{name: "not below an allowed domain", cfg: GuardConfig{AllowedHosts: []string{".example.com"}}, method: "GET", path: "/v1/models", host: "badexample.com", want: 421},
		{name: "any host", cfg: GuardConfig{AllowedHosts: []string{"*"}, Authenticated: true}, method: "GET", path: "/v1/models", host: "anything.example"},

		// Other sites: Sec-Fetch-Site and Origin.
		{name: "same-origin POST", method: "POST", path: "/v1/endpoints/e/stop", host: own, header: hdr{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + own}},
		{name: "same-origin POST, Origin only", method: "POST", path: "/v1/endpoints/e/stop", host: own, header: hdr{"Origin": "http://" + own}},
		{name: "user-initiated (Sec-Fetch-Site: none)", method: "GET", path: "/v1/models", host: own, header: hdr{"Sec-Fetch-Site": "none"}},
		{name: "cross-site POST", method: "POST", path: "/v1/endpoints/e/stop", host: own, header: hdr{"Sec-Fetch-Site": "cross-site", "Origin": "http://attacker.example"}, want: 403},
		{name: "same-site POST (another port)", method: "POST", path: "/v1/endpoints/e/stop", host: own, header: hdr{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:3000"}, want: 403},
		{name: "foreign Origin without Sec-Fetch-Site", method: "POST", path: "/v1/endpoints/e/stop", host: own, header: hdr{"Origin": "http://127.0.0.1:3000"}, want: 403},
		{name: "foreign Origin, Sec-Fetch-Site same-origin", method: "POST", path: "/v1/endpoints/e/stop", host: own, header: hdr{"Origin": "http://attacker.example", "Sec-Fetch-Site": "same-origin"}, want: 403},
		{name: "Origin null", method: "POST", path: "/ui/logout", host: own, header: hdr{"Origin": "null"}, want: 403},
		{name: "Origin with the default port", method: "POST", path: "/ui/logout", host: "kiln.example.com", cfg: GuardConfig{AllowedHosts: []string{"kiln.example.com"}}, header: hdr{"Origin": "https://kiln.example.com:443"}},
		{name: "cross-site form post to login", method: "POST", path: "/ui/login", host: own, header: hdr{"Sec-Fetch-Site": "cross-site", "Origin": "http://attacker.example", "Content-Type": "application/x-www-form-urlencoded"}, body: "token=x", want: 403},
		{name: "same-origin form post to login", method: "POST", path: "/ui/login", host: own, header: hdr{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + own, "Content-Type": "application/x-www-form-urlencoded"}, body: "token=x"},
		{name: "cross-site invocation", method: "POST", path: "/endpoints/e/invocations", host: own, header: hdr{"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}, body: "x", want: 403},
		{name: "cross-site read of the API", method: "GET", path: "/v1/models", host: own, header: hdr{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, want: 403},
		{name: "cross-site read of the live stream", method: "GET", path: "/ui/api/events", host: own, header: hdr{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Origin": "http://attacker.example"}, want: 403},
		{name: "cross-site preflight", method: "OPTIONS", path: "/v1/models", host: own, header: hdr{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Origin": "http://attacker.example"}, want: 403},
		{name: "a link followed from another site", method: "GET", path: "/ui/", host: own, header: hdr{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}},
		{name: "a form post navigating from another site", method: "POST", path: "/ui/logout", host: own, header: hdr{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Origin": "http://attacker.example"}, want: 403},

		// The native API's bodies are JSON.
		{name: "JSON body", method: "POST", path: "/v1/models", host: own, header: hdr{"Content-Type": "application/json"}, body: "{}"},
		{name: "JSON body with a charset", method: "PUT", path: "/v1/alarms/a", host: own, header: hdr{"Content-Type": "Application/JSON; charset=utf-8"}, body: "{}"},
		{name: "no Content-Type (a Blob body)", method: "POST", path: "/v1/models", host: own, body: "{}", want: 415},
		{name: "text/plain", method: "POST", path: "/v1/models", host: own, header: hdr{"Content-Type": "text/plain;charset=UTF-8"}, body: "{}", want: 415},
		{name: "form", method: "POST", path: "/v1/endpoints", host: own, header: hdr{"Content-Type": "application/x-www-form-urlencoded"}, body: "a=b", want: 415},
		{name: "multipart", method: "POST", path: "/v1/endpoint-configs", host: own, header: hdr{"Content-Type": "multipart/form-data; boundary=x"}, body: "--x--", want: 415},
		{name: "a prefix of application/json", method: "POST", path: "/v1/models", host: own, header: hdr{"Content-Type": "application/jsonx"}, body: "{}", want: 415},
		{name: "DELETE with a body and no type", method: "DELETE", path: "/v1/models/m", host: own, body: "{}", want: 415},
		{name: "POST without a body", method: "POST", path: "/v1/endpoints/e/rollback", host: own},
		{name: "DELETE without a body", method: "DELETE", path: "/v1/models/m", host: own},
		{name: "invocations take any type", method: "POST", path: "/endpoints/e/invocations", host: own, header: hdr{"Content-Type": "text/csv"}, body: "1,2"},

		// The AWS protocols refuse browsers outright.
		{name: "SageMaker from an SDK", method: "POST", path: "/", host: own, header: hdr{"X-Amz-Target": "SageMaker.CreateModel", "Content-Type": "application/x-amz-json-1.1"}, body: "{}"},
		{name: "CloudWatch query from an SDK", method: "POST", path: "/", host: own, header: hdr{"Content-Type": "application/x-www-form-urlencoded"}, body: "Action=DescribeAlarms"},
		{name: "CloudWatch query form from a page", method: "POST", path: "/", host: own, header: hdr{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}, body: "Action=SetAlarmState", want: 403},
		{name: "CloudWatch query, same origin", method: "POST", path: "/", host: own, header: hdr{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://" + own, "Sec-Fetch-Site": "same-origin"}, body: "Action=SetAlarmState", want: 403},
		{name: "CloudWatch query, Sec-Fetch-Mode only", method: "POST", path: "/", host: own, header: hdr{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Mode": "navigate"}, body: "Action=SetAlarmState", want: 403},
		{name: "CloudWatch CBOR from a page", method: "POST", path: "/service/GraniteServiceVersion20100801/operation/PutMetricAlarm", host: own, header: hdr{"Content-Type": "text/plain", "Origin": "http://attacker.example"}, body: "x", want: 403},
		{name: "the redirect at / is not the AWS API", method: "GET", path: "/", host: own, header: hdr{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.cfg.Addr == "" {
				c.cfg.Addr = own
			}
			g, err := NewGuard(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(c.method, "http://"+own+c.path, strings.NewReader(c.body))
			r.Host = c.host
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			got := 0
			if ref := g.Check(r); ref != nil {
				got = ref.Status
				if ref.Message == "" {
					t.Error("a refusal without a message")
				}
			}
			if got != c.want {
				t.Errorf("got %d, want %d", got, c.want)
			}
		})
	}
}

func TestNewGuardRefusesBadEntries(t *testing.T) {
	for _, c := range []struct {
		cfg  GuardConfig
		want string
	}{
		{GuardConfig{AllowedHosts: []string{"*"}}, "needs credentials"},
		{GuardConfig{AllowedHosts: []string{"http://kiln.example.com"}}, "not a URL"},
		{GuardConfig{AllowedHosts: []string{"kiln example"}}, "want a host name"},
		{GuardConfig{AllowedHosts: []string{"a..b"}}, "want a host name"},
		{GuardConfig{AllowedHosts: []string{"."}}, "want a host name"},
	} {
		_, err := NewGuard(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error with %q", c.cfg.AllowedHosts, err, c.want)
		}
	}
}

// TestGuardRefusalShapes checks that a refusal is written in the error
// shape of the API called, so that each client shows its message.
func TestGuardRefusalShapes(t *testing.T) {
	g, err := NewGuard(GuardConfig{Addr: "127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("%s %s was let through", r.Method, r.URL.Path)
	}))
	serve := func(method, path, host string, header map[string]string, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "http://127.0.0.1:8080"+path, strings.NewReader(body))
		r.Host = host
		for k, v := range header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	w := serve("POST", "/v1/models", "127.0.0.1:8080", nil, "{}")
	var eb ErrorBody
	if w.Code != 415 || json.Unmarshal(w.Body.Bytes(), &eb) != nil || eb.Code != "invalid" || !strings.Contains(eb.Message, "application/json") {
		t.Errorf("native 415: got %d %s", w.Code, w.Body)
	}
	w = serve("GET", "/v1/models", "attacker.example:8080", nil, "")
	if w.Code != 421 || json.Unmarshal(w.Body.Bytes(), &eb) != nil || !strings.Contains(eb.Message, `"attacker.example:8080"`) || !strings.Contains(eb.Message, "--allowed-host attacker.example") {
		t.Errorf("native 421: got %d %s", w.Code, w.Body)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("a refusal without nosniff")
	}

	w = serve("POST", "/", "127.0.0.1:8080", map[string]string{"X-Amz-Target": "SageMaker.CreateModel", "Origin": "http://attacker.example"}, "{}")
	var aj struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if w.Code != 403 || json.Unmarshal(w.Body.Bytes(), &aj) != nil || aj.Type != "AccessDeniedException" || w.Header().Get("X-Amzn-Errortype") != "AccessDeniedException" || !strings.Contains(aj.Message, "Origin") {
		t.Errorf("awsJson 403: got %d %s", w.Code, w.Body)
	}

	w = serve("POST", "/", "127.0.0.1:8080", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"}, "Action=SetAlarmState")
	var qx struct {
		Error struct{ Code, Message string }
	}
	if w.Code != 403 || xml.Unmarshal(w.Body.Bytes(), &qx) != nil || qx.Error.Code != "AccessDenied" {
		t.Errorf("awsQuery 403: got %d %s", w.Code, w.Body)
	}

	w = serve("POST", "/endpoints/e/invocations", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "cross-site"}, "x")
	if w.Code != 403 || json.Unmarshal(w.Body.Bytes(), &aj) != nil || w.Header().Get("X-Amzn-Errortype") != "AccessDeniedException" {
		t.Errorf("runtime 403: got %d %s", w.Code, w.Body)
	}
}

// TestGuardCheckDoesNotAllocate: the gateway asks the guard about every
// invocation on its fast path.
func TestGuardCheckDoesNotAllocate(t *testing.T) {
	g, err := NewGuard(GuardConfig{Addr: "127.0.0.1:8080", AllowedHosts: []string{"kiln.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1:8080", "localhost:8080", "kiln.example.com"} {
		r := httptest.NewRequest("POST", "http://"+host+"/endpoints/e/invocations", strings.NewReader("{}"))
		r.Header.Set("Content-Type", "application/json")
		if n := testing.AllocsPerRun(100, func() {
			if g.Check(r) != nil {
				t.Fatal("refused")
			}
		}); n != 0 {
			t.Errorf("Host %s: %v allocations per check", host, n)
		}
	}
}

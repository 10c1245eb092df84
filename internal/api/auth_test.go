package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kiln-serve/kiln/internal/clock"
)

const (
	testKeyID  = "KILNTESTKEY01"
	testSecret = "kiln-test-secret-0123456789abcdef"
)

func testCreds(t testing.TB) *Credentials {
	t.Helper()
	c := &Credentials{keys: map[string]accessKey{}}
	if err := c.add(testKeyID, testSecret, RoleAdmin); err != nil {
		t.Fatal(err)
	}
	return c
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadCredentials(t *testing.T) {
	const file = "\uFEFF# Kiln's access keys\n" +
		"[default]\n" +
		"aws_access_key_id = KILNONE\n" +
		"aws_secret_access_key = secret-number-one-0001\n" +
		"region = eu-west-1\n" +
		"\n" +
		"; the CI's key\n" +
		"[profile ci]\n" +
		"  AWS_ACCESS_KEY_ID=KILNTWO  \n" +
		"aws_secret_access_key=secret=number=two=0002\n" +
		"kiln_role = Read\n" +
		"[only-settings]\n" +
		"output = json\n"
	env := map[string]string{"KILN_ACCESS_KEY_ID": "KILNENV", "KILN_SECRET_ACCESS_KEY": "secret-from-the-env-03", "KILN_ROLE": "invoke"}
	c, err := LoadCredentials(writeFile(t, file), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.AccessKeyIDs(), []string{"KILNENV", "KILNONE", "KILNTWO"}; !reflect.DeepEqual(got, want) {
		t.Errorf("AccessKeyIDs = %v, want %v", got, want)
	}
	if s, _ := c.secret("KILNTWO"); s != "secret=number=two=0002" {
		t.Errorf("secret of KILNTWO = %q", s)
	}
	if c.Empty() {
		t.Error("Empty")
	}
	for id, want := range map[string]Role{"KILNONE": RoleAdmin, "KILNTWO": RoleRead, "KILNENV": RoleInvoke} {
		if got, _ := c.Role(id); got != want {
			t.Errorf("role of %s = %q, want %q", id, got, want)
		}
	}

	c, err = LoadCredentials("", func(string) string { return "" })
	if err != nil || !c.Empty() {
		t.Errorf("no file, no env: %v, %v; want empty", c, err)
	}
	if !(*Credentials)(nil).Empty() {
		t.Error("nil is not Empty")
	}

	bad := []struct{ name, file, want string }{
		{"no secret", "[a]\naws_access_key_id = K\n", "has aws_access_key_id but no aws_secret_access_key"},
		{"no id", "[a]\naws_secret_access_key = 0123456789abcdef\n", "no aws_access_key_id"},
		{"short secret", "[a]\naws_access_key_id = K\naws_secret_access_key = short\n", "at least 16"},
		{"bad id", "[a]\naws_access_key_id = K/1\naws_secret_access_key = 0123456789abcdef\n", "letters, digits"},
		{"outside a profile", "aws_access_key_id = K\n", "outside any [profile]"},
		{"not key = value", "[a]\njust words\n", ":2:"},
		{"broken header", "[a\n", "[name]"},
		{"conflicting secrets", "[a]\naws_access_key_id = K\naws_secret_access_key = 0123456789abcdef\n[b]\naws_access_key_id = K\naws_secret_access_key = fedcba9876543210\n", "twice"},
		{"bad role", "[a]\naws_access_key_id = K\naws_secret_access_key = 0123456789abcdef\nkiln_role = root\n", "kiln_role"},
		{"role without key", "[a]\nkiln_role = read\n", "no access key"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCredentials(writeFile(t, tc.file), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := LoadCredentials(filepath.Join(t.TempDir(), "nope"), nil); err == nil {
		t.Error("a missing file loaded")
	}
	if _, err := LoadCredentials("", func(k string) string { return map[string]string{"KILN_ACCESS_KEY_ID": "K"}[k] }); err == nil || !strings.Contains(err.Error(), "together") {
		t.Errorf("half the env: %v", err)
	}
}

// The native API takes a SigV4 signature or a kiln1 token; a secret access
// key as bearer token is refused with a message that says what to do.
func TestRequireNative(t *testing.T) {
	clk := clock.NewFake()
	a := &Auth{Creds: testCreds(t), Clock: clk, SessionCookie: "kiln_session"}
	var seen Principal
	h := a.RequireNative(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = PrincipalOf(r.Context())
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}), NativePermission)
	srv := httptest.NewServer(h)
	defer srv.Close()

	tok, err := a.MintToken(testKeyID, RoleAdmin, clk.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	do := func(authz string, sign bool, cookie string) (int, string, string) {
		t.Helper()
		seen = Principal{}
		req, _ := http.NewRequest("POST", srv.URL+"/v1/models", strings.NewReader(`{"ModelName":"m"}`))
		req.Header.Set("Content-Type", "application/json")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "kiln_session", Value: cookie})
		}
		if sign {
			v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, req, hashOf(`{"ModelName":"m"}`), "kiln", "us-east-1", clk.Now())
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var eb ErrorBody
		json.Unmarshal(b, &eb)
		if resp.StatusCode == 200 {
			return 200, string(b), ""
		}
		if eb.Code != "unauthorized" || resp.Header.Get("WWW-Authenticate") == "" || !resp.Close {
			t.Errorf("failure body %s, headers %v", b, resp.Header)
		}
		return resp.StatusCode, "", eb.Message
	}

	if status, _, msg := do("Bearer "+testSecret, false, ""); status != 401 || !strings.Contains(msg, "not accepted as a bearer token") || !strings.Contains(msg, "kiln token") {
		t.Errorf("the secret as bearer token: %d %q", status, msg)
	}
	if status, body, _ := do("Bearer "+tok, false, ""); status != 200 || body != `{"ModelName":"m"}` || seen.AccessKeyID != testKeyID || seen.Via != "token" {
		t.Errorf("token: %d %q as %+v", status, body, seen)
	}
	if status, _, _ := do("bearer  "+tok+" ", false, ""); status != 200 {
		t.Errorf("lower-case bearer with spaces: %d", status)
	}
	if status, body, _ := do("", true, ""); status != 200 || body != `{"ModelName":"m"}` || seen.AccessKeyID != testKeyID || seen.Via != "sigv4" {
		t.Errorf("SigV4: %d %q as %+v", status, body, seen)
	}
	if status, _, _ := do("", false, tok); status != 200 || seen.Via != "session" {
		t.Errorf("session cookie: %d as %+v", status, seen)
	}
	if status, _, msg := do("Bearer "+testKeyID, false, ""); status != 401 || !strings.Contains(msg, "kiln token") {
		t.Errorf("the key ID as a token: %d %q", status, msg)
	}
	if status, _, msg := do("", false, ""); status != 401 || !strings.Contains(msg, "Bearer") {
		t.Errorf("no authorization: %d %q", status, msg)
	}
	if status, _, msg := do("Basic eDp5", false, ""); status != 401 || !strings.Contains(msg, "AWS4-HMAC-SHA256") {
		t.Errorf("basic auth: %d %q", status, msg)
	}
	// A forged token: another role, another expiry, another MAC.
	parts := strings.Split(tok, ".")
	for name, forged := range map[string]string{
		"longer":    strings.Join([]string{parts[0], parts[1], parts[2], "99999999999", parts[4]}, "."),
		"other mac": strings.Join([]string{parts[0], parts[1], parts[2], parts[3], strings.Repeat("A", len(parts[4]))}, "."),
		"truncated": parts[0] + "." + parts[1],
	} {
		if status, _, _ := do("Bearer "+forged, false, ""); status != 401 {
			t.Errorf("forged token (%s): %d", name, status)
		}
	}
	clk.Advance(time.Hour)
	if status, _, msg := do("Bearer "+tok, false, ""); status != 401 || !strings.Contains(msg, "expired") {
		t.Errorf("expired token: %d %q", status, msg)
	}
	fresh, _ := a.MintToken(testKeyID, RoleAdmin, clk.Now().Add(time.Hour))
	a.Revoke(fresh)
	if status, _, msg := do("", false, fresh); status != 401 || !strings.Contains(msg, "signed out") {
		t.Errorf("revoked session: %d %q", status, msg)
	}
}

// Tokens carry a role within their key's, and roles are enforced.
func TestTokenRoles(t *testing.T) {
	c := &Credentials{keys: map[string]accessKey{}}
	c.add("READER", "reader-secret-0123456789", RoleRead)
	a := &Auth{Creds: c}
	if _, err := a.MintToken("READER", RoleDeploy, time.Now().Add(time.Hour)); err == nil {
		t.Error("a read key minted a deploy token")
	}
	tok, err := a.MintToken("READER", RoleRead, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	h := a.RequireNative(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), NativePermission)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/endpoints", 200},
		{"POST", "/v1/metrics/statistics", 200},
		{"POST", "/v1/endpoints/e/rollback", 403},
		{"POST", "/v1/models", 403},
		{"DELETE", "/v1/alarms/a", 403},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s %s with a read token: %d %s, want %d", tc.method, tc.path, rec.Code, rec.Body, tc.want)
		}
	}
	// A token whose role became wider than its key's is refused.
	c.keys["READER"] = accessKey{secret: "reader-secret-0123456789", role: RoleInvoke, tokenKey: tokenKey("reader-secret-0123456789")}
	if _, _, err := a.verifyToken(tok); err == nil || !strings.Contains(err.Message, "wider than the key's role") {
		t.Errorf("a read token of a key lowered to invoke: %v, want refused for its role", err)
	}
}

func TestRoleAllows(t *testing.T) {
	for _, tc := range []struct {
		role                        Role
		read, invoke, deploy, admin bool
	}{
		{RoleInvoke, false, true, false, false},
		{RoleRead, true, false, false, false},
		{RoleDeploy, true, true, true, false},
		{RoleAdmin, true, true, true, true},
	} {
		got := []bool{tc.role.Allows(PermRead), tc.role.Allows(PermInvoke), tc.role.Allows(PermDeploy), tc.role.Allows(PermAdmin)}
		want := []bool{tc.read, tc.invoke, tc.deploy, tc.admin}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s allows read, invoke, deploy, admin = %v, want %v", tc.role, got, want)
		}
	}
	for op, want := range map[string]Permission{"DescribeEndpoint": PermRead, "ListModels": PermRead, "GetMetricData": PermRead,
		"CreateModel": PermAdmin, "DeleteModel": PermAdmin, "CreateEndpoint": PermDeploy, "PutMetricAlarm": PermDeploy, "SetAlarmState": PermDeploy, "PutMetricData": PermDeploy} {
		if got := AWSOpPermission(op); got != want {
			t.Errorf("AWSOpPermission(%s) = %s, want %s", op, got, want)
		}
	}
}

// Failed authentications are limited per client address, with the
// injected clock: Burst failures, then a refusal before any check, then
// one more try per Every.
func TestFailureLimiter(t *testing.T) {
	clk := clock.NewFake()
	l := &FailureLimiter{Burst: 3, Every: 10 * time.Second, Clock: clk}
	a := &Auth{Creds: testCreds(t), Limiter: l, Clock: clk}
	h := a.RequireNative(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	try := func(remote, authz string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/endpoints", nil)
		req.RemoteAddr = remote
		req.Header.Set("Authorization", authz)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	good, _ := a.MintToken(testKeyID, RoleAdmin, clk.Now().Add(time.Hour))
	for i := 0; i < 3; i++ {
		if rec := try("10.0.0.1:1234", "Bearer wrong"); rec.Code != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, rec.Code)
		}
	}
	rec := try("10.0.0.1:5678", "Bearer "+good)
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "10" || !strings.Contains(rec.Body.String(), `"throttled"`) {
		t.Errorf("after 3 failures, even a good token: %d %v %s, want 429", rec.Code, rec.Header(), rec.Body)
	}
	if rec := try("10.0.0.2:1", "Bearer "+good); rec.Code != 200 {
		t.Errorf("another address: %d, want 200", rec.Code)
	}
	clk.Advance(10 * time.Second)
	if rec := try("10.0.0.1:1", "Bearer "+good); rec.Code != 200 {
		t.Errorf("after one refill: %d, want 200", rec.Code)
	}
	if rec := try("10.0.0.1:1", "Bearer wrong"); rec.Code != 401 {
		t.Errorf("the refilled try: %d, want 401", rec.Code)
	}
	if rec := try("10.0.0.1:1", "Bearer wrong"); rec.Code != 429 {
		t.Errorf("past it: %d, want 429", rec.Code)
	}
}

func TestRequireSigV4(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	// No credentials: the handler itself comes back.
	open := (&Auth{}).RequireSigV4(next, WriteRuntimeAuthError)
	if reflect.ValueOf(open).Pointer() != reflect.ValueOf(next).Pointer() {
		t.Error("RequireSigV4 without credentials wrapped the handler")
	}

	h := (&Auth{Creds: testCreds(t)}).RequireSigV4(next, WriteRuntimeAuthError)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/endpoints/e/invocations", strings.NewReader("{}")))
	var eb struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	json.Unmarshal(rec.Body.Bytes(), &eb)
	if rec.Code != 403 || rec.Header().Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" || eb.Message == "" || rec.Header().Get("X-Amzn-RequestId") == "" {
		t.Errorf("unsigned invocation: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}

func TestWriteRuntimeAuthError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteRuntimeAuthError(rec, &AuthError{Status: 413, Code: "ValidationException", Message: "too large"})
	if rec.Code != 413 || rec.Header().Get("X-Amzn-ErrorType") != "ValidationError" {
		t.Errorf("got %d %q, want 413 ValidationError", rec.Code, rec.Header().Get("X-Amzn-ErrorType"))
	}
}

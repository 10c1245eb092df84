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
)

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
		"[only-settings]\n" +
		"output = json\n"
	env := map[string]string{"KILN_ACCESS_KEY_ID": "KILNENV", "KILN_SECRET_ACCESS_KEY": "secret-from-the-env-03"}
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

func TestRequireBearerOrSigV4(t *testing.T) {
	a := &Auth{Creds: testCreds(t)}
	var seen string
	h := a.RequireBearerOrSigV4(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = AccessKeyID(r.Context())
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	do := func(authz string, sign bool) (int, string, string) {
		t.Helper()
		seen = ""
		req, _ := http.NewRequest("POST", srv.URL+"/v1/models", strings.NewReader(`{"ModelName":"m"}`))
		req.Header.Set("Content-Type", "application/json")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		if sign {
			v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, req, hashOf(`{"ModelName":"m"}`), "kiln", "us-east-1", time.Now())
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
		if eb.Code != "unauthorized" || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("failure body %s, WWW-Authenticate %q", b, resp.Header.Get("WWW-Authenticate"))
		}
		return resp.StatusCode, "", eb.Message
	}

	if status, body, _ := do("Bearer "+testSecret, false); status != 200 || body != `{"ModelName":"m"}` || seen != testKeyID {
		t.Errorf("bearer: %d %q as %q", status, body, seen)
	}
	if status, _, _ := do("bearer  "+testSecret+" ", false); status != 200 {
		t.Errorf("lower-case bearer with spaces: %d", status)
	}
	if status, body, _ := do("", true); status != 200 || body != `{"ModelName":"m"}` || seen != testKeyID {
		t.Errorf("SigV4: %d %q as %q", status, body, seen)
	}
	if status, _, msg := do("Bearer "+testKeyID, false); status != 401 || !strings.Contains(msg, "bearer token") {
		t.Errorf("the key ID as a token: %d %q", status, msg)
	}
	if status, _, msg := do("", false); status != 401 || !strings.Contains(msg, "Bearer") {
		t.Errorf("no authorization: %d %q", status, msg)
	}
	if status, _, msg := do("Basic eDp5", false); status != 401 || !strings.Contains(msg, "AWS4-HMAC-SHA256") {
		t.Errorf("basic auth: %d %q", status, msg)
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

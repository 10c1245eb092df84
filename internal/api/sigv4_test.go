package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kiln-serve/kiln/internal/clock"
)

// verifyResult is what the test server says about a request.
type verifyResult struct {
	Status    int    `json:"status"`
	KeyID     string `json:"key_id"`
	Code      string `json:"code"`
	QueryCode string `json:"query_code"`
	Message   string `json:"message"`
	Body      string `json:"body"` // what the handler read after Verify
}

// verifyServer answers every request with what Auth.Verify made of it.
func verifyServer(t *testing.T, a *Auth) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, aerr := a.Verify(r)
		res := verifyResult{KeyID: id}
		if aerr != nil {
			res.Status, res.Code, res.QueryCode, res.Message = aerr.Status, aerr.Code, aerr.queryCode(), aerr.Message
		} else {
			b, _ := io.ReadAll(r.Body)
			res.Body = string(b)
		}
		json.NewEncoder(w).Encode(res)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, req *http.Request) verifyResult {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res verifyResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func hashOf(body string) string {
	s := sha256.Sum256([]byte(body))
	return hex.EncodeToString(s[:])
}

func TestSigV4(t *testing.T) {
	clk := clock.NewFake()
	now := clk.Now()
	a := &Auth{Creds: testCreds(t), Clock: clk, MaxBody: 1 << 10}
	srv := verifyServer(t, a)
	good := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	const body = `{"EndpointName":"e1"}`

	type request struct {
		method, path, body string
		header             map[string]string
	}
	sageMaker := request{method: "POST", path: "/", body: body, header: map[string]string{"X-Amz-Target": "SageMaker.DescribeEndpoint", "Content-Type": "application/x-amz-json-1.1"}}
	build := func(r request) *http.Request {
		var rd io.Reader
		if r.body != "" {
			rd = strings.NewReader(r.body)
		}
		req, err := http.NewRequest(r.method, srv.URL+r.path, rd)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range r.header {
			req.Header.Set(k, v)
		}
		return req
	}
	sign := func(req *http.Request, creds aws.Credentials, payload string, at time.Time) *http.Request {
		// A new signer each time: a signer caches derived keys by access
		// key ID, so it would sign "wrong secret" with the right one.
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hashOf(payload), "sagemaker", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
		return req
	}

	cases := []struct {
		name      string
		req       func() *http.Request
		code      string // "" means accepted
		queryCode string
		want      string // in the message
	}{
		{"good", func() *http.Request { return sign(build(sageMaker), good, body, now) }, "", "", ""},
		{"good GET without body", func() *http.Request {
			return sign(build(request{method: "GET", path: "/healthz"}), good, "", now)
		}, "", "", ""},
		{"good with query and escaped path", func() *http.Request {
			return sign(build(request{method: "POST", path: "/endpoints/a-b/invocations%20x~?b=2&a=1&a=0&x=hello%20world&e=", body: body}), good, body, now)
		}, "", "", ""},
		{"good CBOR path", func() *http.Request {
			return sign(build(request{method: "POST", path: cloudWatchCBORPrefix + "GetMetricData", body: "\xa0", header: map[string]string{"Smithy-Protocol": "rpc-v2-cbor"}}), good, "\xa0", now)
		}, "", "", ""},
		{"good with signed payload hash header", func() *http.Request {
			r := build(sageMaker)
			r.Header.Set("X-Amz-Content-Sha256", hashOf(body))
			return sign(r, good, body, now)
		}, "", "", ""},
		{"good with a session token", func() *http.Request {
			c := good
			c.SessionToken = "token"
			return sign(build(sageMaker), c, body, now)
		}, "", "", ""},
		{"unsigned header added later", func() *http.Request {
			r := sign(build(sageMaker), good, body, now)
			r.Header.Set("X-Added-By-Proxy", "1")
			return r
		}, "", "", ""},
		{"14 minutes skew", func() *http.Request { return sign(build(sageMaker), good, body, now.Add(-14*time.Minute)) }, "", "", ""},

		{"wrong secret", func() *http.Request {
			return sign(build(sageMaker), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: "not-the-secret-at-all"}, body, now)
		}, "InvalidSignatureException", "SignatureDoesNotMatch", "does not match"},
		{"unknown key", func() *http.Request {
			return sign(build(sageMaker), aws.Credentials{AccessKeyID: "NOBODY", SecretAccessKey: testSecret}, body, now)
		}, "UnrecognizedClientException", "InvalidClientTokenId", "security token"},
		{"16 minutes late", func() *http.Request { return sign(build(sageMaker), good, body, now.Add(-16*time.Minute)) },
			"InvalidSignatureException", "RequestExpired", "Signature expired"},
		{"16 minutes early", func() *http.Request { return sign(build(sageMaker), good, body, now.Add(16*time.Minute)) },
			"InvalidSignatureException", "RequestExpired", "not yet current"},
		{"tampered body", func() *http.Request {
			r := sign(build(sageMaker), good, body, now)
			tampered := strings.Replace(body, "e1", "e2", 1)
			r.Body = io.NopCloser(strings.NewReader(tampered))
			return r
		}, "InvalidSignatureException", "SignatureDoesNotMatch", "does not match"},
		{"payload hash header disagrees with body", func() *http.Request {
			r := build(sageMaker)
			r.Header.Set("X-Amz-Content-Sha256", hashOf("something else"))
			return sign(r, good, "something else", now)
		}, "InvalidSignatureException", "SignatureDoesNotMatch", "x-amz-content-sha256"},
		{"unsigned payload", func() *http.Request {
			r := build(sageMaker)
			r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			return sign(r, good, body, now)
		}, "InvalidSignatureException", "SignatureDoesNotMatch", "UNSIGNED-PAYLOAD"},
		{"signed header removed", func() *http.Request {
			r := sign(build(sageMaker), good, body, now)
			r.Header.Del("X-Amz-Target")
			return r
		}, "InvalidSignatureException", "SignatureDoesNotMatch", `"x-amz-target" is listed in SignedHeaders`},
		{"signed header changed", func() *http.Request {
			r := sign(build(sageMaker), good, body, now)
			r.Header.Set("X-Amz-Target", "SageMaker.DeleteEndpoint")
			return r
		}, "InvalidSignatureException", "SignatureDoesNotMatch", "Canonical String"},
		{"query changed", func() *http.Request {
			r := sign(build(request{method: "POST", path: "/?a=1", body: body}), good, body, now)
			r.URL.RawQuery = "a=2"
			return r
		}, "InvalidSignatureException", "SignatureDoesNotMatch", "does not match"},
		{"no authorization", func() *http.Request { return build(sageMaker) },
			"MissingAuthenticationTokenException", "MissingAuthenticationToken", "Missing Authentication Token"},
		{"presigned URL", func() *http.Request { return build(request{method: "GET", path: "/?X-Amz-Signature=abc"}) },
			"IncompleteSignatureException", "IncompleteSignature", "presigned"},
		{"not SigV4", func() *http.Request {
			r := build(sageMaker)
			r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
			return r
		}, "IncompleteSignatureException", "IncompleteSignature", "AWS4-HMAC-SHA256"},
		{"no signature", func() *http.Request {
			r := sign(build(sageMaker), good, body, now)
			r.Header.Set("Authorization", strings.Split(r.Header.Get("Authorization"), ", Signature=")[0])
			return r
		}, "IncompleteSignatureException", "IncompleteSignature", "'Signature'"},
		{"bad credential scope", func() *http.Request {
			r := sign(build(sageMaker), good, body, now)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
			return r
		}, "IncompleteSignatureException", "IncompleteSignature", "Credential must have the form"},
		{"no X-Amz-Date", func() *http.Request {
			r := sign(build(sageMaker), good, body, now)
			r.Header.Del("X-Amz-Date")
			return r
		}, "IncompleteSignatureException", "IncompleteSignature", "X-Amz-Date"},
		{"scope date differs", func() *http.Request {
			r := sign(build(sageMaker), good, body, now)
			r.Header.Set("X-Amz-Date", now.Add(-10*time.Minute).Format(amzDateFormat))
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), now.Format("20060102"), "20251231", 1))
			return r
		}, "InvalidSignatureException", "SignatureDoesNotMatch", "Credential scope"},
		{"body too large", func() *http.Request {
			big := strings.Repeat("x", 2<<10)
			return sign(build(request{method: "POST", path: "/", body: big}), good, big, now)
		}, "ValidationException", "RequestEntityTooLarge", "larger than 1024 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := send(t, tc.req())
			if res.Code != tc.code || res.QueryCode != tc.queryCode || !strings.Contains(res.Message, tc.want) {
				t.Fatalf("got %q/%q %q, want %q/%q with %q", res.Code, res.QueryCode, res.Message, tc.code, tc.queryCode, tc.want)
			}
			if tc.code == "" && res.KeyID != testKeyID {
				t.Errorf("accepted as %q, want %q", res.KeyID, testKeyID)
			}
		})
	}

	// The handler reads the body that was verified.
	if res := send(t, sign(build(sageMaker), good, body, now)); res.Body != body {
		t.Errorf("handler read %q after Verify, want %q", res.Body, body)
	}
}

// TestSigV4Scopes checks one Auth against signatures of several days,
// regions and services, and a wrong secret after a right one: the cached
// signing keys must be told apart by all of them.
func TestSigV4Scopes(t *testing.T) {
	clk := clock.NewFake()
	a := &Auth{Creds: testCreds(t), Clock: clk}
	srv := verifyServer(t, a)
	good := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	wrong := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret + "x"}
	for day := range 2 {
		for _, region := range []string{"us-east-1", "eu-west-1"} {
			for _, service := range []string{"sagemaker", "monitoring"} {
				for _, creds := range []aws.Credentials{good, good, wrong} {
					req, err := http.NewRequest("POST", srv.URL+"/", strings.NewReader("{}"))
					if err != nil {
						t.Fatal(err)
					}
					if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hashOf("{}"), service, region, clk.Now()); err != nil {
						t.Fatal(err)
					}
					res := send(t, req)
					if accepted := res.Code == ""; accepted != (creds == good) {
						t.Errorf("day %d, %s, %s, right secret %v: %+v", day, region, service, creds == good, res)
					}
				}
			}
		}
		clk.Advance(24 * time.Hour)
	}
}

// With no credentials, Verify lets everything through.
func TestSigV4NoCredentials(t *testing.T) {
	for _, creds := range []*Credentials{nil, {}} {
		a := &Auth{Creds: creds}
		req := httptest.NewRequest("POST", "/", strings.NewReader("{}"))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 garbage")
		if id, err := a.Verify(req); id != "" || err != nil {
			t.Errorf("Verify with creds %v = %q, %v; want it to pass", creds, id, err)
		}
	}
}

// FuzzSigV4Verify: no Authorization header, date or body makes Verify
// panic, accept a request it cannot have signed, or fail without a code.
func FuzzSigV4Verify(f *testing.F) {
	clk := clock.NewFake()
	date := clk.Now().Format(amzDateFormat)
	f.Add("AWS4-HMAC-SHA256 Credential="+testKeyID+"/"+date[:8]+"/us-east-1/sagemaker/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", date, "{}", "a=1&b=%20")
	f.Add("AWS4-HMAC-SHA256 Credential=/, SignedHeaders=;;, Signature=", "", "", "")
	f.Add("AWS4-HMAC-SHA256 Credential="+testKeyID+"/"+date[:8]+"/r/s/aws4_request,SignedHeaders=HOST;x-amz-date,Signature=zz", date, "x", "%zz")
	f.Add("Bearer x", "20260102T030405Z", "", "")
	a := &Auth{Creds: testCreds(f), Clock: clk, MaxBody: 1 << 10}
	f.Fuzz(func(t *testing.T, authz, amzDate, body, query string) {
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Authorization", authz)
		req.Header.Set("X-Amz-Date", amzDate)
		id, err := a.Verify(req)
		if err == nil {
			t.Fatalf("accepted %q as %q without a signature by its secret", authz, id)
		}
		if err.Code == "" || err.Message == "" || err.Status < 400 {
			t.Fatalf("error without its code: %+v", err)
		}
	})
}

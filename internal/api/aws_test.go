package api

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/smithy-go/encoding/cbor"
)

// stub stands in for a protocol's handler: it counts its calls.
type stub struct{ calls int }

func (c *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.calls++
	io.WriteString(w, "ok")
}

func TestAWSHandlerDispatch(t *testing.T) {
	sm, cw := &stub{}, &stub{}
	h := AWSHandler(sm, cw, nil)
	cases := []struct {
		name, method, path string
		header             map[string]string
		wantCW             bool
		status             int
		code               string
	}{
		{"SageMaker", "POST", "/", map[string]string{"X-Amz-Target": "SageMaker.ListModels"}, false, 200, ""},
		{"CloudWatch JSON", "POST", "/", map[string]string{"X-Amz-Target": "GraniteServiceVersion20100801.DescribeAlarms", "Content-Type": "application/x-amz-json-1.0"}, true, 200, ""},
		{"CloudWatch CBOR", "POST", "/service/GraniteServiceVersion20100801/operation/DescribeAlarms", map[string]string{"Smithy-Protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"}, true, 200, ""},
		{"CloudWatch query", "POST", "/", map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, true, 200, ""},
		{"nothing", "POST", "/", nil, false, 400, "UnknownOperationException"},
		{"other target", "POST", "/", map[string]string{"X-Amz-Target": "DynamoDB_20120810.ListTables"}, false, 400, "UnknownOperationException"},
		{"GET", "GET", "/", nil, false, 405, "UnknownOperationException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, smBefore := cw.calls, sm.calls
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(""))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status || rec.Header().Get("X-Amzn-ErrorType") != tc.code || (cw.calls > before) != tc.wantCW {
				t.Errorf("got %d %q (CloudWatch called: %v): %s", rec.Code, rec.Header().Get("X-Amzn-ErrorType"), cw.calls > before, rec.Body)
			}
			if (sm.calls > smBefore) != (tc.name == "SageMaker") {
				t.Errorf("SageMaker called: %v", sm.calls > smBefore)
			}
			if rec.Header().Get("X-Amzn-RequestId") == "" {
				t.Error("no x-amzn-RequestId")
			}
		})
	}
}

// Authentication failures come back in the shape of the protocol spoken.
func TestAWSHandlerAuthErrorShapes(t *testing.T) {
	sm, cw := &stub{}, &stub{}
	h := AWSHandler(sm, cw, &Auth{Creds: testCreds(t)})
	unsigned := func(path string, header map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, strings.NewReader("{}"))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=NOBODY/20260102/us-east-1/monitoring/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
		req.Header.Set("X-Amz-Date", "20260102T030405Z")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	rec := unsigned("/", map[string]string{"X-Amz-Target": "SageMaker.ListModels"})
	var jb struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	json.Unmarshal(rec.Body.Bytes(), &jb)
	if rec.Code != 403 || jb.Type != "UnrecognizedClientException" || rec.Header().Get("X-Amzn-ErrorType") != "UnrecognizedClientException" {
		t.Errorf("SageMaker: %d %s", rec.Code, rec.Body)
	}

	rec = unsigned("/", map[string]string{"X-Amz-Target": "GraniteServiceVersion20100801.DescribeAlarms", "Content-Type": "application/x-amz-json-1.0"})
	json.Unmarshal(rec.Body.Bytes(), &jb)
	if rec.Code != 403 || jb.Type != "UnrecognizedClientException" || rec.Header().Get("X-Amzn-Query-Error") != "InvalidClientTokenId;Sender" ||
		rec.Header().Get("Content-Type") != "application/x-amz-json-1.0" {
		t.Errorf("CloudWatch JSON: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}

	rec = unsigned("/service/GraniteServiceVersion20100801/operation/DescribeAlarms", map[string]string{"Smithy-Protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"})
	v, err := cbor.Decode(rec.Body.Bytes())
	m, _ := v.(cbor.Map)
	if err != nil || rec.Code != 403 || m["__type"] != cbor.String("UnrecognizedClientException") || m["message"] == nil ||
		rec.Header().Get("Smithy-Protocol") != "rpc-v2-cbor" || rec.Header().Get("X-Amzn-Query-Error") != "InvalidClientTokenId;Sender" {
		t.Errorf("CloudWatch CBOR: %d %v %v %v", rec.Code, rec.Header(), v, err)
	}

	rec = unsigned("/", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	var xb struct {
		Error struct{ Type, Code, Message string }
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &xb); err != nil || rec.Code != 403 || xb.Error.Code != "InvalidClientTokenId" || xb.Error.Type != "Sender" {
		t.Errorf("CloudWatch query: %d %s %v", rec.Code, rec.Body, err)
	}
	if cw.calls != 0 || sm.calls != 0 {
		t.Errorf("CloudWatch was called %d times, SageMaker %d, for unauthenticated requests", cw.calls, sm.calls)
	}

	// A CloudWatch handler that writes its own auth errors is used.
	own := &authWritingStub{}
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/", strings.NewReader("Action=DescribeAlarms"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	AWSHandler(nil, own, &Auth{Creds: testCreds(t)}).ServeHTTP(rec, req)
	if own.got == nil || own.got.QueryCode != "MissingAuthenticationToken" || rec.Code != 499 {
		t.Errorf("AuthErrorWriter not used: %+v, %d", own.got, rec.Code)
	}
}

type authWritingStub struct {
	stub
	got *AuthError
}

func (s *authWritingStub) WriteAuthError(w http.ResponseWriter, r *http.Request, e *AuthError) {
	s.got = e
	w.WriteHeader(499)
}

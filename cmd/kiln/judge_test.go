package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kiln-serve/kiln"
)

// put-judge sends the judge alarm the flags describe to PUT /v1/alarms/NAME.
func TestAlarmsPutJudge(t *testing.T) {
	var got kiln.Alarm
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.Method + " " + r.URL.Path
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got.StateValue = kiln.StateInsufficientData
		json.NewEncoder(w).Encode(got)
	}))
	defer srv.Close()

	var out bytes.Buffer
	c := &cli{out: &out, errOut: &out, server: srv.URL}
	cmd := newAlarmsPutJudgeCmd(c)
	cmd.SetArgs([]string{"demo-judge", "--endpoint", "demo", "--alpha", "0.001", "--tolerance", "0", "--metrics", "errors", "--early-promotion"})
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if path != "PUT /v1/alarms/demo-judge" {
		t.Errorf("request %q, want PUT /v1/alarms/demo-judge", path)
	}
	j := got.Judge
	if j == nil || j.EndpointName != "demo" || j.Alpha != 0.001 || j.Tolerance == nil || *j.Tolerance != 0 ||
		len(j.Metrics) != 1 || j.Metrics[0] != "errors" || !j.EarlyPromotion || j.InsufficientData != kiln.JudgeWait {
		t.Errorf("sent judge %+v", j)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("sent alarm does not validate: %v", err)
	}
	if want := "alarm/demo-judge configured (INSUFFICIENT_DATA)\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}

	cmd = newAlarmsPutJudgeCmd(c)
	cmd.SetArgs([]string{"demo-judge"})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "--endpoint") {
		t.Errorf("without --endpoint: %v, want an error naming --endpoint", err)
	}
}

// FuzzPutJudgeFlags: whatever the flags hold, the alarm put-judge builds is
// either valid or refused with an EINVALID error that names a Judge field;
// valid ones survive the trip through JSON unchanged in meaning.
func FuzzPutJudgeFlags(f *testing.F) {
	f.Add("demo", 0.01, 0.1, "errors,latency", 100, "wait", false)
	f.Add("", 0.0, -1.0, ",,errors, latency ,", 0, "pass", true)
	f.Add("a--b", 0.6, 11.0, "latency,latency", -1, "WAIT", false)
	f.Fuzz(func(t *testing.T, endpoint string, alpha, tol float64, metrics string, minReq int, insufficient string, early bool) {
		a := judgeAlarm("fuzz", judgeFlags{endpoint: endpoint, alpha: alpha, tolerance: tol, metrics: metrics,
			minRequests: minReq, insufficient: insufficient, early: early})
		err := a.Validate()
		if err != nil {
			if kiln.ErrorCode(err) != kiln.EINVALID || !strings.Contains(kiln.ErrorMessage(err), "Judge") {
				t.Fatalf("error %v: want EINVALID naming a Judge field", err)
			}
			return
		}
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var back kiln.Alarm
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("valid alarm invalid after JSON: %v", err)
		}
		if back.Judge.ToleranceOrDefault() != tol || back.Judge.AlphaOrDefault() != a.Judge.AlphaOrDefault() {
			t.Fatalf("JSON changed the judge: %+v, want %+v", back.Judge, a.Judge)
		}
	})
}

// put-judge's help says of --min-requests what docs/judge.md says and the
// judge does (internal/judge's TestMinRequestsGatesOnlyOK): it gates OK,
// not ALARM.
func TestPutJudgeHelpMinRequests(t *testing.T) {
	code, out, errOut := runKiln(t, "alarms", "put-judge", "--help")
	if code != 0 {
		t.Fatalf("put-judge --help: exit status %d: %s", code, errOut)
	}
	var flag string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "--min-requests") {
			flag = l
		}
	}
	if !strings.Contains(flag, "before the judge says OK") || strings.Contains(flag, "before a verdict") {
		t.Errorf("--min-requests help %q: want it to gate OK only", flag)
	}
	if !strings.Contains(out, "goes to ALARM as soon as the evidence shows a\nregression, with fewer requests") {
		t.Errorf("put-judge --help does not say that ALARM needs no minimum:\n%s", out)
	}
}

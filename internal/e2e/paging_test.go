package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api/cloudwatch"
	"github.com/kiln-serve/kiln/internal/api/native"
	"github.com/kiln-serve/kiln/internal/server"
)

// getPage does GET url and returns the status, the names in the body and
// the next-page token.
func getPage(t *testing.T, url string) (int, []string, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil, "", string(body)
	}
	var models []kiln.Model
	if err := json.Unmarshal(body, &models); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
	var names []string
	for _, m := range models {
		names = append(names, m.ModelName)
	}
	return resp.StatusCode, names, resp.Header.Get(native.NextTokenHeader), string(body)
}

func createModelsNamed(t *testing.T, p *kilnProc, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := p.client.CreateModel(t.Context(), &kiln.Model{ModelName: n, PrimaryContainer: &kiln.ContainerDef{Image: kilnBin + " demo-model"}}); err != nil {
			t.Fatal(err)
		}
	}
}

// GET /v1/models is paged: ?limit and ?next, a token in Kiln-Next-Token
// while there are more, a default and a maximum page size, and clear 400s
// for a bad limit or token. The CLI and the client follow the pages.
func TestV1ListsPaged(t *testing.T) {
	p := startKiln(t, "")
	var all []string
	for i := range kiln.DefaultPageLimit + 5 {
		all = append(all, fmt.Sprintf("m-%03d", i))
	}
	// Created out of name order: pages are in name order all the same.
	backward := slices.Clone(all)
	slices.Reverse(backward)
	createModelsNamed(t, p, backward...)

	var got []string
	url := p.url + "/v1/models?limit=40"
	pages := 0
	for {
		status, names, next, body := getPage(t, url)
		if status != 200 {
			t.Fatalf("GET %s: %d %s", url, status, body)
		}
		pages++
		if len(names) > 40 {
			t.Errorf("page of %d, want at most 40", len(names))
		}
		got = append(got, names...)
		if next == "" {
			break
		}
		url = p.url + "/v1/models?limit=40&next=" + next
	}
	if pages != 3 || !slices.Equal(got, all) {
		t.Errorf("%d pages of 40 gave %d models %v..., want 3 pages, all %d in name order", pages, len(got), got[:min(3, len(got))], len(all))
	}

	_, names, next, _ := getPage(t, p.url+"/v1/models")
	if len(names) != kiln.DefaultPageLimit || next == "" {
		t.Errorf("GET /v1/models without limit: %d models, next %q; want %d and a token", len(names), next, kiln.DefaultPageLimit)
	}

	for _, q := range []string{"limit=0", "limit=1001", "limit=ten", "limit=-1", "next=%25%25", "next=!"} {
		status, _, _, body := getPage(t, p.url+"/v1/models?"+q)
		word := strings.SplitN(q, "=", 2)[0]
		if status != 400 || !strings.Contains(body, word) {
			t.Errorf("GET /v1/models?%s = %d %.200s; want 400 naming %s", q, status, body, word)
		}
	}

	// The other lists page the same way.
	for _, path := range []string{"/v1/endpoint-configs", "/v1/endpoints", "/v1/alarms"} {
		status, _, next, body := getPage(t, p.url+path+"?limit=1")
		if status != 200 || next != "" || strings.TrimSpace(body) != "[]" {
			t.Errorf("GET %s?limit=1 = %d %q next %q", path, status, body, next)
		}
	}

	cl := *p.client
	cl.PageLimit = 7
	models, err := cl.ListModels(t.Context())
	if err != nil || len(models) != len(all) {
		t.Errorf("client ListModels over pages of 7: %d models, %v; want %d", len(models), err, len(all))
	}
	out := p.mustCLI("get", "models", "-o", "json")
	var cliModels []kiln.Model
	if err := json.Unmarshal([]byte(out), &cliModels); err != nil || len(cliModels) != len(all) {
		t.Errorf("kiln get models -o json: %d models, %v; want %d", len(cliModels), err, len(all))
	}
}

// sageMaker calls a SageMaker operation on p with a JSON body.
func sageMaker(t *testing.T, p *kilnProc, op, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", p.url+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "SageMaker."+op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", op, body, resp.StatusCode, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// modelNames returns the names of ListModels' answer.
func modelNames(out map[string]any) []string {
	var names []string
	for _, m := range out["Models"].([]any) {
		names = append(names, m.(map[string]any)["ModelName"].(string))
	}
	return names
}

// listAllModels follows ListModels' NextToken and returns the names.
func listAllModels(t *testing.T, p *kilnProc, req map[string]any) []string {
	t.Helper()
	var names []string
	for {
		b, _ := json.Marshal(req)
		out := sageMaker(t, p, "ListModels", string(b))
		names = append(names, modelNames(out)...)
		next, _ := out["NextToken"].(string)
		if next == "" {
			return names
		}
		req["NextToken"] = next
	}
}

// SageMaker's ListModels reads only the records of the page it returns:
// records damaged on disk that are not in the page are never read, which
// Kiln would log. Paging through all of them, by name or by creation time,
// returns every sound model once, in order.
func TestListModelsReadsOnlyItsPage(t *testing.T) {
	dir := t.TempDir()
	p := startKiln(t, dir)
	createModelsNamed(t, p, "a-2", "z-3", "a-1", "z-1", "a-3", "z-2") // in this order
	p.stop()
	for _, n := range []string{"z-1", "z-2", "z-3"} {
		flipInFile(t, filepath.Join(dir, "kiln.db"), "model/"+n+`"`)
	}
	p = startKiln(t, dir)
	startLogs := len(p.logs.String())

	first := sageMaker(t, p, "ListModels", `{"SortBy": "Name", "SortOrder": "Ascending", "MaxResults": 3}`)
	if got := modelNames(first); strings.Join(got, " ") != "a-1 a-2 a-3" || first["NextToken"] == nil {
		t.Errorf("ListModels by name, first page = %v, next %v; want a-1 a-2 a-3 and a token", got, first["NextToken"])
	}
	got := listAllModels(t, p, map[string]any{"NameContains": "A-", "MaxResults": 2}) // by creation time, newest first
	if strings.Join(got, " ") != "a-3 a-1 a-2" {
		t.Errorf("ListModels by creation time descending, NameContains A- = %v, want a-3 a-1 a-2", got)
	}
	// A read of a damaged model logs it, whether by Get or in a list.
	if logs := p.logs.String()[startLogs:]; strings.Contains(logs, "damaged record") {
		t.Errorf("ListModels read records it did not return:\n%s", logs)
	}

	// Every page, damaged records left out; the creation-time filter reads
	// every record, and still leaves the damaged ones out.
	got = listAllModels(t, p, map[string]any{"SortBy": "CreationTime", "SortOrder": "Ascending", "MaxResults": 1})
	if strings.Join(got, " ") != "a-2 a-1 a-3" {
		t.Errorf("ListModels by creation time ascending = %v, want a-2 a-1 a-3", got)
	}
	got = listAllModels(t, p, map[string]any{"CreationTimeAfter": 0, "MaxResults": 1, "SortBy": "Name"})
	if strings.Join(got, " ") != "a-3 a-2 a-1" {
		t.Errorf("ListModels with CreationTimeAfter = %v, want a-3 a-2 a-1", got)
	}
}

// runServer runs a server in this process on dir, logging to logs, until
// the returned stop is called.
func runServer(t *testing.T, dir string, logs io.Writer) (*server.Server, func()) {
	t.Helper()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: dir, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stop := func() {
		if err := srv.Close(); err != nil {
			t.Errorf("server: %v", err)
		}
	}
	t.Cleanup(stop)
	if err := srv.Run(context.Background()); err != nil {
		t.Fatalf("server stopped at start: %v", err)
	}
	return srv, stop
}

// CloudWatch's DescribeAlarms reads alarms in name order only until its
// page is full: a damaged alarm past the page is never read.
func TestDescribeAlarmsReadsOnlyItsPage(t *testing.T) {
	dir := t.TempDir()
	srv, stop := runServer(t, dir, io.Discard)
	for _, name := range []string{"a-1", "a-2", "z-1"} {
		_, err := srv.Service().PutAlarm(t.Context(), &kiln.Alarm{
			AlarmName: name, Namespace: "AWS/SageMaker", MetricName: "Invocations", Statistic: "Sum",
			Dimensions: []kiln.Dimension{{Name: "EndpointName", Value: "none"}, {Name: "VariantName", Value: "AllTraffic"}},
			Period:     60, EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: "GreaterThanThreshold",
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	stop()
	flipInFile(t, filepath.Join(dir, "kiln.db"), `alarm:z-1"`)

	logs := &syncBuffer{}
	srv, _ = runServer(t, dir, logs)
	h := &cloudwatch.API{Service: srv.Service()}
	describe := func(body string) string {
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Target", "GraniteServiceVersion20100801.DescribeAlarms")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("DescribeAlarms %s: %d %s", body, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	out := describe(`{"MaxRecords": 1}`)
	if !strings.Contains(out, `"AlarmName":"a-1"`) || strings.Contains(out, `"a-2"`) || !strings.Contains(out, "NextToken") {
		t.Errorf("DescribeAlarms MaxRecords 1 = %s; want a-1 and a NextToken", out)
	}
	// Only Get's report: the alarm engine lists every alarm in the
	// background, which reports z-1 as left out of its list.
	if strings.Contains(logs.String(), "refusing to read a damaged record") {
		t.Errorf("DescribeAlarms read an alarm past its page:\n%s", logs.String())
	}
	// All of them: the damaged one is read, refused and left out.
	out = describe(`{}`)
	if !strings.Contains(out, `"a-1"`) || !strings.Contains(out, `"a-2"`) || strings.Contains(out, "z-") {
		t.Errorf("DescribeAlarms = %s; want a-1 and a-2 only", out)
	}
	if !strings.Contains(logs.String(), "refusing to read a damaged record") {
		t.Errorf("the damaged alarm was not reported:\n%s", logs.String())
	}
}

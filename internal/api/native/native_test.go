package native_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
	"github.com/kiln-serve/kiln/internal/api/client"
	"github.com/kiln-serve/kiln/internal/api/native"
	"github.com/kiln-serve/kiln/internal/server"
)

// startKiln runs a Kiln on a loopback port with its store in a temporary
// directory, and returns its URL.
func startKiln(t *testing.T) string {
	t.Helper()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Run(ctx); err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return "http://" + srv.Addr()
}

// call sends one request to the native API and returns its status, its
// header and its body.
func call(t *testing.T, method, url, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// Each route answers with the status of what it did, and every failure in
// the native error shape with the status its code means.
func TestRoutes(t *testing.T) {
	url := startKiln(t)
	const js = "application/json"
	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		code                                  string // of the error body; "" for success
	}{
		{"create", "POST", "/v1/models", js, `{"ModelName":"m1","PrimaryContainer":{"Image":"kiln demo-model"}}`, 201, ""},
		{"create again", "POST", "/v1/models", js, `{"ModelName":"m1","PrimaryContainer":{"Image":"kiln demo-model"}}`, 409, kiln.ECONFLICT},
		{"get", "GET", "/v1/models/m1", "", "", 200, ""},
		{"unknown field", "POST", "/v1/models", js, `{"ModelName":"m2","Nope":1}`, 400, kiln.EINVALID},
		{"not JSON", "POST", "/v1/models", "text/plain", `{}`, 415, kiln.EINVALID},
		{"too large", "POST", "/v1/models", js, `{"ModelName":"` + strings.Repeat("a", api.MaxRequestBody) + `"}`, 413, kiln.EINVALID},
		{"stop a missing endpoint", "POST", "/v1/endpoints/nope/stop", "", "", 404, kiln.ENOTFOUND},
		{"metrics of a missing endpoint", "GET", "/v1/endpoints/nope/metrics", "", "", 404, kiln.ENOTFOUND},
		{"metrics with a bad window", "GET", "/v1/endpoints/nope/metrics?window=4h", "", "", 400, kiln.EINVALID},
		{"no such route", "GET", "/v1/nothing", "", "", 404, kiln.ENOTFOUND},
		{"delete", "DELETE", "/v1/models/m1", "", "", 204, ""},
		{"get deleted", "GET", "/v1/models/m1", "", "", 404, kiln.ENOTFOUND},
	}
	for _, tc := range cases {
		status, _, body := call(t, tc.method, url+tc.path, tc.contentType, tc.body)
		var eb api.ErrorBody
		json.Unmarshal([]byte(body), &eb)
		if status != tc.status || eb.Code != tc.code || (tc.code != "" && eb.Message == "") {
			t.Errorf("%s: %s %s = %d %s, want %d with code %q", tc.name, tc.method, tc.path, status, body, tc.status, tc.code)
		}
	}
}

// A list comes a page at a time, each page naming the next in a header and
// a Link, and the client follows the pages to the end.
func TestPages(t *testing.T) {
	url := startKiln(t)
	c := &client.Client{BaseURL: url, PageLimit: 2}
	ctx := context.Background()
	for _, name := range []string{"c", "a", "e", "b", "d"} {
		if _, err := c.CreateModel(ctx, &kiln.Model{ModelName: name, PrimaryContainer: &kiln.ContainerDef{Image: "kiln demo-model"}}); err != nil {
			t.Fatal(err)
		}
	}

	var got []string
	path := "/v1/models?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatalf("more than 3 pages of 5 models by 2: %v", got)
		}
		status, h, body := call(t, "GET", url+path, "", "")
		var page []kiln.Model
		if status != 200 || json.Unmarshal([]byte(body), &page) != nil {
			t.Fatalf("GET %s = %d %s", path, status, body)
		}
		for _, m := range page {
			got = append(got, m.ModelName)
		}
		path = ""
		if next := h.Get(native.NextTokenHeader); next != "" {
			path = "/v1/models?limit=2&next=" + next
			if link := h.Get("Link"); !strings.Contains(link, "next="+next) || !strings.HasSuffix(link, `rel="next"`) {
				t.Errorf("Link %q does not name the next page %q", link, next)
			}
		}
	}
	if strings.Join(got, ",") != "a,b,c,d,e" {
		t.Errorf("pages hold %v, want a to e once each, by name", got)
	}

	all, err := c.ListModels(ctx)
	if err != nil || len(all) != 5 {
		t.Errorf("the client's ListModels = %d models, %v; want all 5", len(all), err)
	}
	for _, bad := range []string{"limit=0", "limit=x", "next=%25%25"} {
		if status, _, body := call(t, "GET", url+"/v1/models?"+bad, "", ""); status != 400 {
			t.Errorf("?%s = %d %s, want 400", bad, status, body)
		}
	}

	// The client returns the server's errors with their codes.
	_, err = c.GetModel(ctx, "nope")
	var ke *kiln.Error
	if !errors.As(err, &ke) || ke.Code != kiln.ENOTFOUND {
		t.Errorf("GetModel of a missing model: %v, want a kiln.Error with code %s", err, kiln.ENOTFOUND)
	}
}

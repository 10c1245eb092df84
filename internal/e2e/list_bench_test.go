package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api/native"
	"github.com/kiln-serve/kiln/internal/api/sagemaker"
	"github.com/kiln-serve/kiln/internal/server"
	"github.com/kiln-serve/kiln/internal/store"
)

// The list benchmarks run over a store of benchModels models of the largest
// size a model may have (an Image of kiln.MaxImageLength characters, 100
// environment variables of 1,024-character names and values, 50 tags), made
// once per process, written straight to the store.
//
//	go test ./internal/e2e -run '^$' -bench 'ListModels|V1Models' -count 5
//
// KILN_BENCH_MODELS changes the number of models (default 2,500).
var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

func benchModels() int {
	if n, err := strconv.Atoi(os.Getenv("KILN_BENCH_MODELS")); err == nil && n > 0 {
		return n
	}
	return 2500
}

func largestModel(name string, created time.Time) kiln.Model {
	env := map[string]string{}
	for i := range kiln.MaxEnvironment {
		env[fmt.Sprintf("K%03d_%s", i, strings.Repeat("k", kiln.MaxEnvKeyLength-5))] = strings.Repeat("v", kiln.MaxEnvValueLength)
	}
	var tags []kiln.Tag
	for i := range kiln.MaxTags {
		tags = append(tags, kiln.Tag{Key: fmt.Sprintf("t%03d%s", i, strings.Repeat("k", 124)), Value: strings.Repeat("v", 256)})
	}
	return kiln.Model{
		ModelName:        name,
		ModelArn:         kiln.ARN("us-east-1", "000000000000", "model", name),
		PrimaryContainer: &kiln.ContainerDef{Image: "/usr/bin/model-server " + strings.Repeat("a", kiln.MaxImageLength-22), Environment: env},
		Tags:             tags,
		CreationTime:     created,
	}
}

// benchDataDir returns the data dir holding the models.
func benchDataDir(b *testing.B) string {
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "kiln-list-bench")
		if benchErr != nil {
			return
		}
		var st *store.Bolt
		if st, benchErr = store.Open(filepath.Join(benchDir, "kiln.db"), nil); benchErr != nil {
			return
		}
		defer st.Close()
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range benchModels() {
			name := fmt.Sprintf("model-%05d", i)
			v, _ := json.Marshal(largestModel(name, t0.Add(time.Duration(i)*time.Second)))
			if _, benchErr = st.Put(context.Background(), "models/"+name, v, 0); benchErr != nil {
				return
			}
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchDir
}

// benchServer runs a server on the benchmark's data dir.
func benchServer(b *testing.B) *server.Server {
	dir := benchDataDir(b)
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := srv.Close(); err != nil {
			b.Errorf("server: %v", err)
		}
	})
	if err := srv.Run(context.Background()); err != nil {
		b.Fatalf("server stopped at start: %v", err)
	}
	return srv
}

// BenchmarkListModels: SageMaker ListModels, MaxResults 10, through the
// SageMaker handler of a running server.
func BenchmarkListModels(b *testing.B) {
	for _, body := range []string{
		`{"MaxResults": 10}`, // by CreationTime, newest first
		`{"MaxResults": 10, "SortBy": "Name", "SortOrder": "Ascending", "NameContains": "-00"}`,
	} {
		name := "CreationTime"
		if strings.Contains(body, "Name\"") {
			name = "Name+NameContains"
		}
		b.Run(name, func(b *testing.B) {
			srv := benchServer(b)
			h := &sagemaker.API{Service: srv.Service()}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				req := httptest.NewRequest("POST", "/", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-amz-json-1.1")
				req.Header.Set("X-Amz-Target", "SageMaker.ListModels")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || strings.Count(rec.Body.String(), `"ModelName"`) != 10 {
					b.Fatalf("ListModels: %d %.300s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}

// BenchmarkV1Models: GET /v1/models?limit=100 through the native handler of
// a running server; B/op is the memory one request costs.
func BenchmarkV1Models(b *testing.B) {
	srv := benchServer(b)
	h := (&native.API{Service: srv.Service()}).Handler()
	b.ReportAllocs()
	b.ResetTimer()
	var size int
	for range b.N {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/models?limit=100", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /v1/models: %d %.300s", rec.Code, rec.Body.String())
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "response-bytes")
}

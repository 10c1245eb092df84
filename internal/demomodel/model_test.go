package demomodel

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const twoFeatureModel = `{"weights": [2, -1], "bias": 0.5, "labels": ["cat", "dog"]}`

func writeModel(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWeightsFromFileURL(t *testing.T) {
	path := writeModel(t, twoFeatureModel)
	m, err := LoadModel(context.Background(), "file://"+path, nil)
	if err != nil {
		t.Fatalf("LoadModel: %v", err)
	}
	srv := newTestServer(t, Config{Model: m})

	resp := post(t, srv.URL, "text/csv", "1,0\n0,3\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	got := decode[response](t, resp.Body).Predictions
	want := []Prediction{
		{Score: sigmoid(2.5), Label: "dog"},
		{Score: sigmoid(-2.5), Label: "cat"},
	}
	if len(got) != 2 || !near(got[0].Score, want[0].Score) || got[0].Label != want[0].Label ||
		!near(got[1].Score, want[1].Score) || got[1].Label != want[1].Label {
		t.Errorf("predictions %+v, want %+v", got, want)
	}

	// The default model's four features no longer fit.
	resp = post(t, srv.URL, "application/json", rowPos)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("4 features against a 2-feature model: status %d, want 400", resp.StatusCode)
	}
	if msg := decode[errorBody](t, resp.Body).Message; !strings.Contains(msg, "the model expects 2") {
		t.Errorf("message %q, want it to say the model expects 2", msg)
	}
}

func TestLoadModelSources(t *testing.T) {
	path := writeModel(t, twoFeatureModel)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/model.json":
			w.Write([]byte(twoFeatureModel))
		default:
			http.NotFound(w, r)
		}
	}))
	defer web.Close()

	for _, tt := range []struct{ name, url string }{
		{"file URL", "file://" + path},
		{"file URL with localhost", "file://localhost" + path},
		{"plain path", path},
		{"http URL", web.URL + "/model.json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := LoadModel(context.Background(), tt.url, web.Client())
			if err != nil {
				t.Fatalf("LoadModel(%q): %v", tt.url, err)
			}
			if m.Features() != 2 || m.Bias != 0.5 || m.Labels[1] != "dog" {
				t.Errorf("model %+v, want the two-feature model", m)
			}
		})
	}

	for _, tt := range []struct{ name, url, want string }{
		{"missing file", filepath.Join(t.TempDir(), "none.json"), "no such file"},
		{"file URL with a host", "file://model.json", `file URL has host "model.json"`},
		{"unsupported scheme", "s3://bucket/model.json", `unsupported scheme "s3"`},
		{"http not found", web.URL + "/missing.json", "404"},
		{"bad content", writeModel(t, `{"weights": [1], "bais": 2}`), `unknown field "bais"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadModel(context.Background(), tt.url, web.Client())
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.url) {
				t.Errorf("LoadModel(%q): error %v, want one naming the URL and containing %q", tt.url, err, tt.want)
			}
		})
	}
}

func TestParseModel(t *testing.T) {
	m, err := ParseModel([]byte(`{"weights": [1, 2, 3], "bias": -1}`))
	if err != nil {
		t.Fatalf("ParseModel: %v", err)
	}
	// Without labels, "neg" and "pos".
	for _, tt := range []struct {
		x    []float64
		want string
	}{{[]float64{0, 0, 0}, "neg"}, {[]float64{1, 0, 0}, "pos"}, {[]float64{0, 0, 1}, "pos"}} {
		p, err := m.Predict(tt.x)
		if err != nil || p.Label != tt.want {
			t.Errorf("Predict(%v) = %+v, %v, want label %s", tt.x, p, err, tt.want)
		}
	}

	for _, tt := range []struct{ name, data, want string }{
		{"no weights", `{"bias": 1}`, "model has no weights"},
		{"empty weights", `{"weights": []}`, "model has no weights"},
		{"one label", `{"weights": [1], "labels": ["only"]}`, "model has 1 labels"},
		{"three labels", `{"weights": [1], "labels": ["a", "b", "c"]}`, "model has 3 labels"},
		{"not JSON", `weights: [1]`, "decode model JSON"},
		{"string weight", `{"weights": ["1"]}`, "decode model JSON"},
		{"trailing data", `{"weights": [1]} {}`, "unexpected data after the model object"},
		{"trailing brace", `{"weights": [1]}}`, "unexpected data after the model object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseModel([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseModel(%s): error %v, want one containing %q", tt.data, err, tt.want)
			}
		})
	}
}

func TestSigmoid(t *testing.T) {
	for _, tt := range []struct{ z, want float64 }{
		{0, 0.5},
		{math.Inf(1), 1},
		{math.Inf(-1), 0},
		{-1000, 0},
		{1000, 1},
		{2, 1 / (1 + math.Exp(-2))},
		{-2, 1 / (1 + math.Exp(2))},
	} {
		if got := sigmoid(tt.z); !near(got, tt.want) || math.IsNaN(got) {
			t.Errorf("sigmoid(%v) = %v, want %v", tt.z, got, tt.want)
		}
	}
}

func TestDefaultModel(t *testing.T) {
	m := DefaultModel()
	if err := m.Validate(); err != nil {
		t.Fatalf("default model invalid: %v", err)
	}
	if m.Features() != 4 {
		t.Errorf("default model has %d features, want 4", m.Features())
	}
	// Each call returns a fresh copy, so a caller cannot change the next one.
	m.Weights[0] = 99
	if DefaultModel().Weights[0] == 99 {
		t.Error("DefaultModel shares its weights between calls")
	}
}

package demomodel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// maxModelBytes bounds a model file; a logistic regression with this many
// bytes of weights is already far beyond a demo.
const maxModelBytes = 16 << 20

// Model is a binary logistic regression: score = sigmoid(Weights·x + Bias).
// It is immutable once served.
type Model struct {
	Weights []float64 `json:"weights"`
	Bias    float64   `json:"bias"`
	// Labels names the negative and the positive class, in that order. If
	// empty, "neg" and "pos" are used.
	Labels []string `json:"labels,omitempty"`
}

// Prediction is the model's answer for one row.
type Prediction struct {
	Score float64 `json:"score"`
	Label string  `json:"label"`
}

// DefaultModel returns the built-in 4-feature model served when no model
// data is given.
func DefaultModel() *Model {
	return &Model{
		Weights: []float64{0.8, -0.4, 1.2, -0.6},
		Bias:    -0.1,
		Labels:  []string{"neg", "pos"},
	}
}

// Validate reports whether m can be served.
func (m *Model) Validate() error {
	if len(m.Weights) == 0 {
		return errors.New("model has no weights")
	}
	for i, w := range m.Weights {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("weight %d is not a finite number", i+1)
		}
	}
	if math.IsNaN(m.Bias) || math.IsInf(m.Bias, 0) {
		return errors.New("bias is not a finite number")
	}
	if n := len(m.Labels); n != 0 && n != 2 {
		return fmt.Errorf("model has %d labels, want 2 (negative, positive) or none", n)
	}
	return nil
}

// Features is the number of features a row must have.
func (m *Model) Features() int { return len(m.Weights) }

// Predict scores one row, which must have Features() values. It reports an
// error only when the arithmetic overflows (huge features against weights of
// both signs).
func (m *Model) Predict(x []float64) (Prediction, error) {
	z := m.Bias
	for i, w := range m.Weights {
		z += w * x[i]
	}
	if math.IsNaN(z) {
		return Prediction{}, errors.New("features overflow the model's arithmetic")
	}
	s := sigmoid(z)
	neg, pos := "neg", "pos"
	if len(m.Labels) == 2 {
		neg, pos = m.Labels[0], m.Labels[1]
	}
	p := Prediction{Score: s, Label: neg}
	if s >= 0.5 {
		p.Label = pos
	}
	return p, nil
}

// sigmoid is written in two halves so that exp never overflows.
func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// ParseModel decodes and validates a model file. Unknown fields are errors, so
// a misspelt "weights" is reported instead of serving an empty model.
func ParseModel(data []byte) (*Model, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Model
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode model JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decode model JSON: unexpected data after the model object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// LoadModel reads a model file from rawURL: a file:// URL, a plain path, or an
// http:// or https:// URL fetched with client (if nil, http.DefaultClient).
func LoadModel(ctx context.Context, rawURL string, client *http.Client) (*Model, error) {
	data, err := readModelData(ctx, rawURL, client)
	if err != nil {
		return nil, fmt.Errorf("load model from %s: %w", rawURL, err)
	}
	m, err := ParseModel(data)
	if err != nil {
		return nil, fmt.Errorf("load model from %s: %w", rawURL, err)
	}
	return m, nil
}

func readModelData(ctx context.Context, rawURL string, client *http.Client) ([]byte, error) {
	if !strings.Contains(rawURL, "://") {
		return readFile(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "file":
		// file://weights.json would put the name in the host; only an empty
		// host or localhost means this machine.
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("file URL has host %q; write file:///absolute/path", u.Host)
		}
		return readFile(u.Path)
	case "http", "https":
		return fetch(ctx, u.String(), client)
	default:
		return nil, fmt.Errorf("unsupported scheme %q; use file://, http:// or https:// or a plain path", u.Scheme)
	}
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f)
}

func fetch(ctx context.Context, u string, client *http.Client) ([]byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET answered %s", resp.Status)
	}
	return readLimited(resp.Body)
}

func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxModelBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxModelBytes {
		return nil, fmt.Errorf("model data is larger than %d bytes", maxModelBytes)
	}
	return data, nil
}

package alarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"

	"github.com/kiln-serve/kiln"
)

// NewPrometheusSource returns a Source for alarms with a Prometheus query.
// It asks the alarm's server for the query over the evaluation range with
// the HTTP API's range query (GET /api/v1/query_range, step = Period); the
// value at the end of each period is that period's data point, and NaN
// values count as missing. The query must return one series, or a scalar;
// none means no data. client makes the requests; give it a Timeout, since a
// server that does not answer holds the alarm's evaluation until it does.
// If nil, a client with a 10-second timeout is used.
func NewPrometheusSource(client *http.Client) Source {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &prometheusSource{client: client, apis: map[string]api.Client{}}
}

type prometheusSource struct {
	client *http.Client

	mu   sync.Mutex
	apis map[string]api.Client // by server URL
}

var _ Source = (*prometheusSource)(nil)

// Datapoints implements Source.
func (s *prometheusSource) Datapoints(ctx context.Context, a *kiln.Alarm, start, end time.Time) ([]Datapoint, error) {
	if a.Prometheus == nil {
		return nil, errors.New("the alarm has no Prometheus query")
	}
	c, err := s.api(a.Prometheus.URL)
	if err != nil {
		return nil, err
	}
	period := time.Duration(a.Period) * time.Second
	u := c.URL("/api/v1/query_range", nil)
	q := u.Query()
	q.Set("query", a.Prometheus.Query)
	// The first sample is at the end of the first period.
	q.Set("start", promTime(start.Add(period)))
	q.Set("end", promTime(end))
	q.Set("step", strconv.Itoa(a.Period))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	resp, body, err := c.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", a.Prometheus.URL, err)
	}
	return parseQueryRange(resp.StatusCode, body, a.Prometheus.Query, period)
}

func (s *prometheusSource) api(url string) (api.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.apis[url]; c != nil {
		return c, nil
	}
	c, err := api.NewClient(api.Config{Address: url, Client: s.client})
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: %w", url, err)
	}
	s.apis[url] = c
	return c, nil
}

// promTime writes a time as the HTTP API takes it: Unix seconds.
func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', -1, 64)
}

// promResponse is the HTTP API's response envelope.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// promSample is a [<unix seconds>, "<value>"] pair.
type promSample struct {
	t time.Time
	v float64
}

func (p *promSample) UnmarshalJSON(b []byte) error {
	var pair [2]json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	var ts json.Number
	if err := json.Unmarshal(pair[0], &ts); err != nil {
		return fmt.Errorf("sample time: %w", err)
	}
	sec, err := ts.Float64()
	if err != nil {
		return fmt.Errorf("sample time: %w", err)
	}
	var vs string
	if err := json.Unmarshal(pair[1], &vs); err != nil {
		return fmt.Errorf("sample value: %w", err)
	}
	v, err := strconv.ParseFloat(vs, 64)
	if err != nil {
		return fmt.Errorf("sample value: %w", err)
	}
	p.t = time.UnixMilli(int64(math.Round(sec * 1e3))).UTC()
	p.v = v
	return nil
}

// parseQueryRange turns a query_range response into data points: a sample
// at time t is the data point of the period that ends at t.
func parseQueryRange(status int, body []byte, query string, period time.Duration) ([]Datapoint, error) {
	var r promResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Status == "" {
		return nil, fmt.Errorf("prometheus: HTTP %d: unexpected response: %.200q", status, bytes.TrimSpace(body))
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus: HTTP %d: %s: %s", status, r.ErrorType, r.Error)
	}
	var samples []promSample
	switch r.Data.ResultType {
	case "matrix":
		var series []struct {
			Metric map[string]string `json:"metric"`
			Values []promSample      `json:"values"`
		}
		if err := json.Unmarshal(r.Data.Result, &series); err != nil {
			return nil, fmt.Errorf("prometheus: matrix result: %w", err)
		}
		switch len(series) {
		case 0:
			return nil, nil
		case 1:
			samples = series[0].Values
		default:
			return nil, fmt.Errorf("prometheus query %q returned %d series; an alarm needs exactly one (aggregate them, e.g. with sum or max)", query, len(series))
		}
	case "scalar":
		var s promSample
		if err := json.Unmarshal(r.Data.Result, &s); err != nil {
			return nil, fmt.Errorf("prometheus: scalar result: %w", err)
		}
		samples = []promSample{s}
	default:
		return nil, fmt.Errorf("prometheus query %q returned a %s; a range query should return a matrix", query, r.Data.ResultType)
	}
	points := make([]Datapoint, 0, len(samples))
	for _, s := range samples {
		if math.IsNaN(s.v) {
			continue
		}
		points = append(points, Datapoint{Timestamp: s.t.Add(-period), Value: s.v})
	}
	return points, nil
}

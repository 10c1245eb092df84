package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
	"github.com/kiln-serve/kiln/internal/api/native"
)

// Client calls a Kiln server's native API. It implements kiln.Service, so the
// CLI speaks to a server exactly as the server speaks to itself.
type Client struct {
	// BaseURL is the server, e.g. http://127.0.0.1:8080 or https://kiln.example.com.
	BaseURL string
	// AccessKeyID and SecretAccessKey, if set, sign every request with
	// SigV4; the secret itself never leaves the client.
	AccessKeyID, SecretAccessKey string
	// Token, if set and there is no access key, is sent as a bearer token.
	// It must be a token from `kiln token` (kiln1...).
	Token string
	// Now is the time requests are signed at. If nil, the wall clock.
	Now func() time.Time
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
	// PageLimit is how many records the List methods ask for in each page
	// they follow; 0 means kiln.MaxPageLimit.
	PageLimit int
}

var _ kiln.Service = (*Client)(nil)

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	_, err := c.doHeader(ctx, method, path, in, out)
	return err
}

// listAll follows the pages of GET path (a /v1 list) and returns every
// record.
func listAll[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	all := []T{}
	limit := c.PageLimit
	if limit == 0 {
		limit = kiln.MaxPageLimit
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	for {
		var page []T
		h, err := c.doHeader(ctx, "GET", path+"?"+q.Encode(), nil, &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		next := h.Get(native.NextTokenHeader)
		if next == "" {
			return all, nil
		}
		q.Set("next", next)
	}
}

// doHeader is do, returning the response's header too.
func (c *Client) doHeader(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	var body io.Reader
	var raw []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body, raw = bytes.NewReader(b), b
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.Authorize(ctx, req, raw); err != nil {
		return nil, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Message != "" {
			return nil, &kiln.Error{Code: eb.Code, Message: eb.Message}
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return resp.Header, nil
	}
	if s, ok := out.(*string); ok {
		*s = string(data)
		return resp.Header, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return resp.Header, nil
}

func esc(s string) string { return url.PathEscape(s) }

func (c *Client) CreateModel(ctx context.Context, m *kiln.Model) (*kiln.Model, error) {
	var out kiln.Model
	return &out, c.do(ctx, "POST", "/v1/models", m, &out)
}

func (c *Client) GetModel(ctx context.Context, name string) (*kiln.Model, error) {
	var out kiln.Model
	return &out, c.do(ctx, "GET", "/v1/models/"+esc(name), nil, &out)
}

// ListModels follows the pages of GET /v1/models and returns every record.
func (c *Client) ListModels(ctx context.Context) ([]kiln.Model, error) {
	return listAll[kiln.Model](ctx, c, "/v1/models")
}

func (c *Client) DeleteModel(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/models/"+esc(name), nil, nil)
}

func (c *Client) CreateEndpointConfig(ctx context.Context, ec *kiln.EndpointConfig) (*kiln.EndpointConfig, error) {
	var out kiln.EndpointConfig
	return &out, c.do(ctx, "POST", "/v1/endpoint-configs", ec, &out)
}

func (c *Client) GetEndpointConfig(ctx context.Context, name string) (*kiln.EndpointConfig, error) {
	var out kiln.EndpointConfig
	return &out, c.do(ctx, "GET", "/v1/endpoint-configs/"+esc(name), nil, &out)
}

// ListEndpointConfigs follows the pages of GET /v1/endpoint-configs and returns every record.
func (c *Client) ListEndpointConfigs(ctx context.Context) ([]kiln.EndpointConfig, error) {
	return listAll[kiln.EndpointConfig](ctx, c, "/v1/endpoint-configs")
}

func (c *Client) DeleteEndpointConfig(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/endpoint-configs/"+esc(name), nil, nil)
}

func (c *Client) CreateEndpoint(ctx context.Context, in kiln.CreateEndpointInput) (*kiln.Endpoint, error) {
	var out kiln.Endpoint
	return &out, c.do(ctx, "POST", "/v1/endpoints", in, &out)
}

func (c *Client) GetEndpoint(ctx context.Context, name string) (*kiln.Endpoint, error) {
	var out kiln.Endpoint
	return &out, c.do(ctx, "GET", "/v1/endpoints/"+esc(name), nil, &out)
}

// ListEndpoints follows the pages of GET /v1/endpoints and returns every record.
func (c *Client) ListEndpoints(ctx context.Context) ([]kiln.Endpoint, error) {
	return listAll[kiln.Endpoint](ctx, c, "/v1/endpoints")
}

func (c *Client) DeleteEndpoint(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/endpoints/"+esc(name), nil, nil)
}

func (c *Client) UpdateEndpoint(ctx context.Context, in kiln.UpdateEndpointInput) (*kiln.Endpoint, error) {
	var out kiln.Endpoint
	return &out, c.do(ctx, "POST", "/v1/endpoints/"+esc(in.EndpointName)+"/update", in, &out)
}

func (c *Client) UpdateEndpointWeightsAndCapacities(ctx context.Context, in kiln.UpdateWeightsInput) (*kiln.Endpoint, error) {
	var out kiln.Endpoint
	return &out, c.do(ctx, "POST", "/v1/endpoints/"+esc(in.EndpointName)+"/weights", in, &out)
}

func (c *Client) StopDeployment(ctx context.Context, name string) (*kiln.Endpoint, error) {
	var out kiln.Endpoint
	return &out, c.do(ctx, "POST", "/v1/endpoints/"+esc(name)+"/stop", nil, &out)
}

func (c *Client) RollbackEndpoint(ctx context.Context, name string) (*kiln.Endpoint, error) {
	var out kiln.Endpoint
	return &out, c.do(ctx, "POST", "/v1/endpoints/"+esc(name)+"/rollback", nil, &out)
}

func (c *Client) EndpointHistory(ctx context.Context, name string) ([]kiln.HistoryEvent, error) {
	var out []kiln.HistoryEvent
	return out, c.do(ctx, "GET", "/v1/endpoints/"+esc(name)+"/history", nil, &out)
}

func (c *Client) EndpointLogs(ctx context.Context, name string, tailBytes int) (string, error) {
	var out string
	return out, c.do(ctx, "GET", fmt.Sprintf("/v1/endpoints/%s/logs?tail=%d", esc(name), tailBytes), nil, &out)
}

func (c *Client) EndpointInstances(ctx context.Context, name string) ([]kiln.InstanceInfo, error) {
	var out []kiln.InstanceInfo
	return out, c.do(ctx, "GET", "/v1/endpoints/"+esc(name)+"/instances", nil, &out)
}

func (c *Client) PutAlarm(ctx context.Context, a *kiln.Alarm) (*kiln.Alarm, error) {
	var out kiln.Alarm
	return &out, c.do(ctx, "PUT", "/v1/alarms/"+esc(a.AlarmName), a, &out)
}

func (c *Client) GetAlarm(ctx context.Context, name string) (*kiln.Alarm, error) {
	var out kiln.Alarm
	return &out, c.do(ctx, "GET", "/v1/alarms/"+esc(name), nil, &out)
}

// ListAlarms follows the pages of GET /v1/alarms and returns every record.
func (c *Client) ListAlarms(ctx context.Context) ([]kiln.Alarm, error) {
	return listAll[kiln.Alarm](ctx, c, "/v1/alarms")
}

func (c *Client) DeleteAlarms(ctx context.Context, names []string) error {
	for _, n := range names {
		if err := c.do(ctx, "DELETE", "/v1/alarms/"+esc(n), nil, nil); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) SetAlarmState(ctx context.Context, name, state, reason, data string) error {
	return c.do(ctx, "POST", "/v1/alarms/"+esc(name)+"/state", native.SetStateInput{StateValue: state, StateReason: reason, StateReasonData: data}, nil)
}

func (c *Client) AlarmHistory(ctx context.Context, name string) ([]kiln.AlarmHistoryItem, error) {
	var out []kiln.AlarmHistoryItem
	return out, c.do(ctx, "GET", "/v1/alarms/"+esc(name)+"/history", nil, &out)
}

func (c *Client) ListTags(ctx context.Context, arn string) ([]kiln.Tag, error) {
	var out []kiln.Tag
	return out, c.do(ctx, "GET", "/v1/tags?arn="+url.QueryEscape(arn), nil, &out)
}

func (c *Client) AddTags(ctx context.Context, arn string, tags []kiln.Tag) ([]kiln.Tag, error) {
	var out []kiln.Tag
	return out, c.do(ctx, "POST", "/v1/tags", native.TagsInput{ResourceArn: arn, Tags: tags}, &out)
}

func (c *Client) DeleteTags(ctx context.Context, arn string, keys []string) error {
	return c.do(ctx, "POST", "/v1/tags/delete", native.TagsInput{ResourceArn: arn, TagKeys: keys}, nil)
}

// Get fetches a raw JSON document, for routes outside kiln.Service (metrics).
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, "GET", path, nil, out)
}

func (c *Client) GetMetricStatistics(ctx context.Context, q kiln.MetricQuery) ([]kiln.Datapoint, error) {
	var out []kiln.Datapoint
	return out, c.do(ctx, "POST", "/v1/metrics/statistics", q, &out)
}

func (c *Client) PutMetricData(ctx context.Context, namespace string, data []kiln.MetricDatum) error {
	return c.do(ctx, "POST", "/v1/metrics/data", native.PutMetricDataInput{Namespace: namespace, MetricData: data}, nil)
}

func (c *Client) ListMetrics(ctx context.Context, namespace, metricName string, dims []kiln.Dimension) ([]kiln.Metric, error) {
	var out []kiln.Metric
	return out, c.do(ctx, "POST", "/v1/metrics/list", native.ListMetricsInput{Namespace: namespace, MetricName: metricName, Dimensions: dims}, &out)
}

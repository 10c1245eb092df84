package native

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
	"github.com/kiln-serve/kiln/internal/metrics"
)

// API serves the native JSON API under /v1.
type API struct {
	Service kiln.Service
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
	// Recent summarises an endpoint's recent traffic for
	// GET /v1/endpoints/{name}/metrics; nil answers as if there were no
	// traffic.
	Recent func(endpoint string, window time.Duration) []metrics.VariantSummary
}

// Handler returns the /v1 routes.
func (n *API) Handler() http.Handler {
	mux := http.NewServeMux()
	s := n.Service
	mux.HandleFunc("POST /v1/models", n.created(func(r *http.Request) (any, error) {
		var m kiln.Model
		if err := api.ReadJSON(r, &m); err != nil {
			return nil, err
		}
		return s.CreateModel(r.Context(), &m)
	}))
	mux.HandleFunc("GET /v1/models", listPage(n, kiln.KindModels, kiln.Lister.ModelsNamed))
	mux.HandleFunc("GET /v1/models/{name}", n.ok(func(r *http.Request) (any, error) { return s.GetModel(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("DELETE /v1/models/{name}", n.noContent(func(r *http.Request) error { return s.DeleteModel(r.Context(), r.PathValue("name")) }))

	mux.HandleFunc("POST /v1/endpoint-configs", n.created(func(r *http.Request) (any, error) {
		var c kiln.EndpointConfig
		if err := api.ReadJSON(r, &c); err != nil {
			return nil, err
		}
		return s.CreateEndpointConfig(r.Context(), &c)
	}))
	mux.HandleFunc("GET /v1/endpoint-configs", listPage(n, kiln.KindEndpointConfigs, kiln.Lister.EndpointConfigsNamed))
	mux.HandleFunc("GET /v1/endpoint-configs/{name}", n.ok(func(r *http.Request) (any, error) { return s.GetEndpointConfig(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("DELETE /v1/endpoint-configs/{name}", n.noContent(func(r *http.Request) error { return s.DeleteEndpointConfig(r.Context(), r.PathValue("name")) }))

	mux.HandleFunc("POST /v1/endpoints", n.created(func(r *http.Request) (any, error) {
		var in kiln.CreateEndpointInput
		if err := api.ReadJSON(r, &in); err != nil {
			return nil, err
		}
		return s.CreateEndpoint(r.Context(), in)
	}))
	mux.HandleFunc("GET /v1/endpoints", listPage(n, kiln.KindEndpoints, kiln.Lister.EndpointsNamed))
	mux.HandleFunc("GET /v1/endpoints/{name}", n.ok(func(r *http.Request) (any, error) { return s.GetEndpoint(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("DELETE /v1/endpoints/{name}", n.noContent(func(r *http.Request) error { return s.DeleteEndpoint(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("POST /v1/endpoints/{name}/update", n.ok(func(r *http.Request) (any, error) {
		var in kiln.UpdateEndpointInput
		if err := api.ReadJSON(r, &in); err != nil {
			return nil, err
		}
		if in.EndpointName == "" {
			in.EndpointName = r.PathValue("name")
		} else if in.EndpointName != r.PathValue("name") {
			return nil, kiln.Errorf(kiln.EINVALID, "EndpointName %q in the body does not match %q in the path.", in.EndpointName, r.PathValue("name"))
		}
		return s.UpdateEndpoint(r.Context(), in)
	}))
	mux.HandleFunc("POST /v1/endpoints/{name}/weights", n.ok(func(r *http.Request) (any, error) {
		var in kiln.UpdateWeightsInput
		if err := api.ReadJSON(r, &in); err != nil {
			return nil, err
		}
		in.EndpointName = r.PathValue("name")
		return s.UpdateEndpointWeightsAndCapacities(r.Context(), in)
	}))
	mux.HandleFunc("POST /v1/endpoints/{name}/stop", n.ok(func(r *http.Request) (any, error) { return s.StopDeployment(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("POST /v1/endpoints/{name}/rollback", n.ok(func(r *http.Request) (any, error) { return s.RollbackEndpoint(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("GET /v1/endpoints/{name}/history", n.ok(func(r *http.Request) (any, error) { return s.EndpointHistory(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("GET /v1/endpoints/{name}/metrics", n.endpointMetrics)
	mux.HandleFunc("GET /v1/endpoints/{name}/instances", n.ok(func(r *http.Request) (any, error) { return s.EndpointInstances(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("GET /v1/endpoints/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		tail := 64 << 10
		if t := r.URL.Query().Get("tail"); t != "" {
			v, err := strconv.Atoi(t)
			if err != nil || v < 0 {
				n.Fail(w, kiln.Errorf(kiln.EINVALID, "tail must be a number of bytes, got %q.", t))
				return
			}
			tail = v
		}
		logs, err := s.EndpointLogs(r.Context(), r.PathValue("name"), tail)
		if err != nil {
			n.Fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, logs)
	})

	mux.HandleFunc("PUT /v1/alarms/{name}", n.ok(func(r *http.Request) (any, error) {
		var a kiln.Alarm
		if err := api.ReadJSON(r, &a); err != nil {
			return nil, err
		}
		if a.AlarmName == "" {
			a.AlarmName = r.PathValue("name")
		} else if a.AlarmName != r.PathValue("name") {
			return nil, kiln.Errorf(kiln.EINVALID, "AlarmName %q in the body does not match %q in the path.", a.AlarmName, r.PathValue("name"))
		}
		return s.PutAlarm(r.Context(), &a)
	}))
	mux.HandleFunc("GET /v1/alarms", listPage(n, kiln.KindAlarms, kiln.Lister.AlarmsNamed))
	mux.HandleFunc("GET /v1/alarms/{name}", n.ok(func(r *http.Request) (any, error) { return s.GetAlarm(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("DELETE /v1/alarms/{name}", n.noContent(func(r *http.Request) error { return s.DeleteAlarms(r.Context(), []string{r.PathValue("name")}) }))
	mux.HandleFunc("GET /v1/alarms/{name}/history", n.ok(func(r *http.Request) (any, error) { return s.AlarmHistory(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("POST /v1/alarms/{name}/state", n.ok(func(r *http.Request) (any, error) {
		var in SetStateInput
		if err := api.ReadJSON(r, &in); err != nil {
			return nil, err
		}
		if err := s.SetAlarmState(r.Context(), r.PathValue("name"), in.StateValue, in.StateReason, in.StateReasonData); err != nil {
			return nil, err
		}
		return s.GetAlarm(r.Context(), r.PathValue("name"))
	}))
	mux.HandleFunc("GET /v1/tags", n.ok(func(r *http.Request) (any, error) { return s.ListTags(r.Context(), r.URL.Query().Get("arn")) }))
	mux.HandleFunc("POST /v1/tags", n.ok(func(r *http.Request) (any, error) {
		var in TagsInput
		if err := api.ReadJSON(r, &in); err != nil {
			return nil, err
		}
		return s.AddTags(r.Context(), in.ResourceArn, in.Tags)
	}))
	mux.HandleFunc("POST /v1/tags/delete", n.noContent(func(r *http.Request) error {
		var in TagsInput
		if err := api.ReadJSON(r, &in); err != nil {
			return err
		}
		return s.DeleteTags(r.Context(), in.ResourceArn, in.TagKeys)
	}))
	mux.HandleFunc("POST /v1/metrics/statistics", n.ok(func(r *http.Request) (any, error) {
		var q kiln.MetricQuery
		if err := api.ReadJSON(r, &q); err != nil {
			return nil, err
		}
		return s.GetMetricStatistics(r.Context(), q)
	}))
	mux.HandleFunc("POST /v1/metrics/data", n.noContent(func(r *http.Request) error {
		var in PutMetricDataInput
		if err := api.ReadJSON(r, &in); err != nil {
			return err
		}
		return s.PutMetricData(r.Context(), in.Namespace, in.MetricData)
	}))
	mux.HandleFunc("POST /v1/metrics/list", n.ok(func(r *http.Request) (any, error) {
		var in ListMetricsInput
		if err := api.ReadJSON(r, &in); err != nil {
			return nil, err
		}
		return s.ListMetrics(r.Context(), in.Namespace, in.MetricName, in.Dimensions)
	}))
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		n.Fail(w, &api.HTTPError{Status: http.StatusNotFound, Code: kiln.ENOTFOUND, Message: fmt.Sprintf("No such API: %s %s.", r.Method, r.URL.Path)})
	})
	return mux
}

// SetStateInput is the body of POST /v1/alarms/{name}/state.
type SetStateInput struct {
	StateValue      string `json:"StateValue"`
	StateReason     string `json:"StateReason"`
	StateReasonData string `json:"StateReasonData,omitempty"`
}

// TagsInput is the body of POST /v1/tags (Tags) and POST /v1/tags/delete
// (TagKeys).
type TagsInput struct {
	ResourceArn string     `json:"ResourceArn"`
	Tags        []kiln.Tag `json:"Tags,omitempty"`
	TagKeys     []string   `json:"TagKeys,omitempty"`
}

// PutMetricDataInput is the body of POST /v1/metrics/data.
type PutMetricDataInput struct {
	Namespace  string             `json:"Namespace"`
	MetricData []kiln.MetricDatum `json:"MetricData"`
}

// ListMetricsInput is the body of POST /v1/metrics/list.
type ListMetricsInput struct {
	Namespace  string           `json:"Namespace,omitempty"`
	MetricName string           `json:"MetricName,omitempty"`
	Dimensions []kiln.Dimension `json:"Dimensions,omitempty"`
}

// created answers with f's result as JSON and 201 Created, or f's error.
func (n *API) created(f func(*http.Request) (any, error)) http.HandlerFunc {
	return n.respond(http.StatusCreated, f)
}

// ok answers with f's result as JSON and 200 OK, or f's error: reads, and
// the POSTs that change a record and return it.
func (n *API) ok(f func(*http.Request) (any, error)) http.HandlerFunc {
	return n.respond(http.StatusOK, f)
}

// noContent answers 204 No Content when f succeeds, or f's error.
func (n *API) noContent(f func(*http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(r); err != nil {
			n.Fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (n *API) respond(status int, f func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			n.Fail(w, err)
			return
		}
		api.WriteJSON(w, status, v)
	}
}

// Fail writes err in the native error shape with the status its code means.
func (n *API) Fail(w http.ResponseWriter, err error) {
	var he *api.HTTPError
	if errors.As(err, &he) {
		api.WriteJSON(w, he.Status, api.ErrorBody{Code: he.Code, Message: he.Message})
		return
	}
	code := kiln.ErrorCode(err)
	status := api.StatusOf(code)
	if status == http.StatusInternalServerError && n.Logger != nil {
		n.Logger.Error("request failed", "err", err)
	}
	api.WriteJSON(w, status, api.ErrorBody{Code: code, Message: kiln.ErrorMessage(err)})
}

package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/kiln-serve/kiln"
)

// MaxRequestBody bounds a control-plane request body.
const MaxRequestBody = 1 << 20

// Native serves the native JSON API under /v1.
type Native struct {
	Service kiln.Service
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
}

// Handler returns the /v1 routes.
func (n *Native) Handler() http.Handler {
	mux := http.NewServeMux()
	s := n.Service
	mux.HandleFunc("POST /v1/models", n.create(func(r *http.Request) (any, error) {
		var m kiln.Model
		if err := decode(r, &m); err != nil {
			return nil, err
		}
		return s.CreateModel(r.Context(), &m)
	}))
	mux.HandleFunc("GET /v1/models", listPage(n, kiln.KindModels, kiln.Lister.ModelsNamed))
	mux.HandleFunc("GET /v1/models/{name}", n.get(func(r *http.Request) (any, error) { return s.GetModel(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("DELETE /v1/models/{name}", n.del(func(r *http.Request) error { return s.DeleteModel(r.Context(), r.PathValue("name")) }))

	mux.HandleFunc("POST /v1/endpoint-configs", n.create(func(r *http.Request) (any, error) {
		var c kiln.EndpointConfig
		if err := decode(r, &c); err != nil {
			return nil, err
		}
		return s.CreateEndpointConfig(r.Context(), &c)
	}))
	mux.HandleFunc("GET /v1/endpoint-configs", listPage(n, kiln.KindEndpointConfigs, kiln.Lister.EndpointConfigsNamed))
	mux.HandleFunc("GET /v1/endpoint-configs/{name}", n.get(func(r *http.Request) (any, error) { return s.GetEndpointConfig(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("DELETE /v1/endpoint-configs/{name}", n.del(func(r *http.Request) error { return s.DeleteEndpointConfig(r.Context(), r.PathValue("name")) }))

	mux.HandleFunc("POST /v1/endpoints", n.create(func(r *http.Request) (any, error) {
		var in kiln.CreateEndpointInput
		if err := decode(r, &in); err != nil {
			return nil, err
		}
		return s.CreateEndpoint(r.Context(), in)
	}))
	mux.HandleFunc("GET /v1/endpoints", listPage(n, kiln.KindEndpoints, kiln.Lister.EndpointsNamed))
	mux.HandleFunc("GET /v1/endpoints/{name}", n.get(func(r *http.Request) (any, error) { return s.GetEndpoint(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("DELETE /v1/endpoints/{name}", n.del(func(r *http.Request) error { return s.DeleteEndpoint(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("POST /v1/endpoints/{name}/update", n.get(func(r *http.Request) (any, error) {
		var in kiln.UpdateEndpointInput
		if err := decode(r, &in); err != nil {
			return nil, err
		}
		if in.EndpointName == "" {
			in.EndpointName = r.PathValue("name")
		} else if in.EndpointName != r.PathValue("name") {
			return nil, kiln.Errorf(kiln.EINVALID, "EndpointName %q in the body does not match %q in the path.", in.EndpointName, r.PathValue("name"))
		}
		return s.UpdateEndpoint(r.Context(), in)
	}))
	mux.HandleFunc("POST /v1/endpoints/{name}/weights", n.get(func(r *http.Request) (any, error) {
		var in kiln.UpdateWeightsInput
		if err := decode(r, &in); err != nil {
			return nil, err
		}
		in.EndpointName = r.PathValue("name")
		return s.UpdateEndpointWeightsAndCapacities(r.Context(), in)
	}))
	mux.HandleFunc("POST /v1/endpoints/{name}/stop", n.get(func(r *http.Request) (any, error) { return s.StopDeployment(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("POST /v1/endpoints/{name}/rollback", n.get(func(r *http.Request) (any, error) { return s.RollbackEndpoint(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("GET /v1/endpoints/{name}/history", n.get(func(r *http.Request) (any, error) { return s.EndpointHistory(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("GET /v1/endpoints/{name}/instances", n.get(func(r *http.Request) (any, error) { return s.EndpointInstances(r.Context(), r.PathValue("name")) }))
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

	mux.HandleFunc("PUT /v1/alarms/{name}", n.get(func(r *http.Request) (any, error) {
		var a kiln.Alarm
		if err := decode(r, &a); err != nil {
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
	mux.HandleFunc("GET /v1/alarms/{name}", n.get(func(r *http.Request) (any, error) { return s.GetAlarm(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("DELETE /v1/alarms/{name}", n.del(func(r *http.Request) error { return s.DeleteAlarms(r.Context(), []string{r.PathValue("name")}) }))
	mux.HandleFunc("GET /v1/alarms/{name}/history", n.get(func(r *http.Request) (any, error) { return s.AlarmHistory(r.Context(), r.PathValue("name")) }))
	mux.HandleFunc("POST /v1/alarms/{name}/state", n.get(func(r *http.Request) (any, error) {
		var in SetStateInput
		if err := decode(r, &in); err != nil {
			return nil, err
		}
		if err := s.SetAlarmState(r.Context(), r.PathValue("name"), in.StateValue, in.StateReason, in.StateReasonData); err != nil {
			return nil, err
		}
		return s.GetAlarm(r.Context(), r.PathValue("name"))
	}))
	mux.HandleFunc("GET /v1/tags", n.get(func(r *http.Request) (any, error) { return s.ListTags(r.Context(), r.URL.Query().Get("arn")) }))
	mux.HandleFunc("POST /v1/tags", n.get(func(r *http.Request) (any, error) {
		var in TagsInput
		if err := decode(r, &in); err != nil {
			return nil, err
		}
		return s.AddTags(r.Context(), in.ResourceArn, in.Tags)
	}))
	mux.HandleFunc("POST /v1/tags/delete", n.del(func(r *http.Request) error {
		var in TagsInput
		if err := decode(r, &in); err != nil {
			return err
		}
		return s.DeleteTags(r.Context(), in.ResourceArn, in.TagKeys)
	}))
	mux.HandleFunc("POST /v1/metrics/statistics", n.get(func(r *http.Request) (any, error) {
		var q kiln.MetricQuery
		if err := decode(r, &q); err != nil {
			return nil, err
		}
		return s.GetMetricStatistics(r.Context(), q)
	}))
	mux.HandleFunc("POST /v1/metrics/data", n.del(func(r *http.Request) error {
		var in PutMetricDataInput
		if err := decode(r, &in); err != nil {
			return err
		}
		return s.PutMetricData(r.Context(), in.Namespace, in.MetricData)
	}))
	mux.HandleFunc("POST /v1/metrics/list", n.get(func(r *http.Request) (any, error) {
		var in ListMetricsInput
		if err := decode(r, &in); err != nil {
			return nil, err
		}
		return s.ListMetrics(r.Context(), in.Namespace, in.MetricName, in.Dimensions)
	}))
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		n.Fail(w, &httpError{status: http.StatusNotFound, code: kiln.ENOTFOUND, msg: fmt.Sprintf("No such API: %s %s.", r.Method, r.URL.Path)})
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

// ErrorBody is the native API's error shape.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type httpError struct {
	status    int
	code, msg string
}

func (e *httpError) Error() string { return e.msg }

func (n *Native) create(f func(*http.Request) (any, error)) http.HandlerFunc {
	return n.respond(http.StatusCreated, f)
}

func (n *Native) get(f func(*http.Request) (any, error)) http.HandlerFunc {
	return n.respond(http.StatusOK, f)
}

func (n *Native) del(f func(*http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(r); err != nil {
			n.Fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (n *Native) respond(status int, f func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			n.Fail(w, err)
			return
		}
		WriteJSON(w, status, v)
	}
}

func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"code":"internal","message":"encoding the response failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Fail writes err in the native error shape with the status its code means.
func (n *Native) Fail(w http.ResponseWriter, err error) {
	var he *httpError
	if errors.As(err, &he) {
		WriteJSON(w, he.status, ErrorBody{Code: he.code, Message: he.msg})
		return
	}
	code := kiln.ErrorCode(err)
	status := StatusOf(code)
	if status == http.StatusInternalServerError && n.Logger != nil {
		n.Logger.Error("request failed", "err", err)
	}
	WriteJSON(w, status, ErrorBody{Code: code, Message: kiln.ErrorMessage(err)})
}

// StatusOf maps an application error code to an HTTP status.
func StatusOf(code string) int {
	switch code {
	case kiln.EINVALID:
		return http.StatusBadRequest
	case kiln.ENOTFOUND:
		return http.StatusNotFound
	case kiln.ECONFLICT:
		return http.StatusConflict
	case kiln.ELIMIT:
		// As Kubernetes answers a write beyond a resource quota.
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// decode reads one JSON value into v, refusing unknown fields, trailing data
// and bodies over MaxRequestBody, with messages that name the problem.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &httpError{status: http.StatusUnsupportedMediaType, code: kiln.EINVALID, msg: fmt.Sprintf("Content-Type must be application/json, got %q.", ct)}
	}
	body := http.MaxBytesReader(nil, r.Body, MaxRequestBody)
	return DecodeJSON(body, v)
}

// DecodeJSON decodes exactly one JSON value from rd into v with errors a
// person can act on. Unknown fields are refused.
func DecodeJSON(rd io.Reader, v any) error {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return kiln.Errorf(kiln.EINVALID, "The request body has data after its JSON value.")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return kiln.Errorf(kiln.EINVALID, "The request body has data after its JSON value.")
	}
	return nil
}

func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		return kiln.Errorf(kiln.EINVALID, "The request body is empty; a JSON object is required.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return kiln.Errorf(kiln.EINVALID, "The request body is truncated JSON.")
	case errors.As(err, &syn):
		return kiln.Errorf(kiln.EINVALID, "The request body is not valid JSON at byte %d: %v.", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the request body"
		}
		return kiln.Errorf(kiln.EINVALID, "%s must be %s, not JSON %s.", field, typ.Type, typ.Value)
	case errors.As(err, &mbe):
		return &httpError{status: http.StatusRequestEntityTooLarge, code: kiln.EINVALID, msg: fmt.Sprintf("The request body is larger than %d bytes.", mbe.Limit)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return kiln.Errorf(kiln.EINVALID, "Unknown field %s in the request body.", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return kiln.Errorf(kiln.EINVALID, "The request body could not be decoded: %v.", err)
}

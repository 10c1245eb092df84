package native

import (
	"net/http"
	"strconv"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api"
	"github.com/kiln-serve/kiln/internal/metrics"
)

// endpointMetrics serves GET /v1/endpoints/{name}/metrics?window=60s:
// recent invocations, errors and latency per variant and config.
func (n *API) endpointMetrics(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	window := time.Minute
	if v := r.URL.Query().Get("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 3*time.Hour {
			if secs, err2 := strconv.Atoi(v); err2 == nil && secs >= 1 && secs <= 10800 {
				d, err = time.Duration(secs)*time.Second, nil
			} else {
				n.Fail(w, kiln.Errorf(kiln.EINVALID, "window must be a duration from 1s to 3h, got %q.", v))
				return
			}
		}
		window = d
	}
	if _, err := n.Service.GetEndpoint(r.Context(), name); err != nil {
		n.Fail(w, err)
		return
	}
	var recent []metrics.VariantSummary
	if n.Recent != nil {
		recent = n.Recent(name, window)
	}
	api.WriteJSON(w, http.StatusOK, recent)
}

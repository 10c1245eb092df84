package server

import (
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/deploy"
	"github.com/kiln-serve/kiln/internal/metrics"
)

// fleetRequests gives the controller the requests a fleet answered, from the
// metrics store: the series of the fleet's endpoint, variant and config.
// When an update keeps the live config's name, the old fleet shares that
// series and its requests count too.
type fleetRequests struct {
	m   *metrics.Store
	now func() time.Time
}

var _ deploy.Requests = fleetRequests{}

func (r fleetRequests) Answered(endpoint string, f kiln.Fleet, since time.Time) int {
	end := r.now().Add(time.Second) // the current second counts once it has ended
	if !end.After(since) {
		return 0
	}
	points, err := r.m.Query(metrics.Query{
		MetricName: metrics.Invocations,
		Dimensions: map[string]string{"EndpointName": endpoint, "VariantName": f.VariantName, "EndpointConfigName": f.EndpointConfigName},
		Statistic:  "SampleCount",
		Period:     time.Second,
		Start:      since,
		End:        end,
	})
	if err != nil {
		return 0
	}
	n := 0.0
	for _, p := range points {
		n += p.SampleCount
	}
	return int(n)
}

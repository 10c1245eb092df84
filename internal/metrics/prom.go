package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

var seriesLabels = []string{"endpoint", "variant", "config"}

// promVecs are the Prometheus collectors of a Store.
type promVecs struct {
	invocations     *prometheus.CounterVec
	errors          *prometheus.CounterVec
	modelLatency    *prometheus.HistogramVec
	overheadLatency *prometheus.HistogramVec
}

// promChildren are one series' labelled collectors, resolved once so that
// Record does no label lookup.
type promChildren struct {
	invocations                       prometheus.Counter
	errors4xx, errors5xx, errorsModel prometheus.Counter
	model, overhead                   prometheus.Observer
}

func newPromVecs(reg prometheus.Registerer) *promVecs {
	return &promVecs{
		invocations: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_invocations_total",
			Help: "Invocations received by the gateway, per endpoint, variant and endpoint config.",
		}, seriesLabels)),
		errors: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_invocation_errors_total",
			Help: "Failed invocations: class 4xx and 5xx by the status the client got, model for model errors, connection failures and timeouts.",
		}, append([]string{"class"}, seriesLabels...))),
		modelLatency: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kiln_model_latency_seconds",
			Help:    "Time the model took to answer an invocation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, seriesLabels)),
		overheadLatency: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kiln_overhead_latency_seconds",
			Help:    "Time the gateway added to an invocation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, seriesLabels)),
	}
}

// register registers c, or returns the identical collector registered
// before (two Stores on one registry share their collectors).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// Only a different collector under one of our names gets here: a
		// wiring mistake, not something a request can cause.
		panic(fmt.Sprintf("metrics: registering Prometheus collectors: %v", err))
	}
	return c
}

func (p *promVecs) children(endpoint, variant, config string) *promChildren {
	return &promChildren{
		invocations: p.invocations.WithLabelValues(endpoint, variant, config),
		errors4xx:   p.errors.WithLabelValues("4xx", endpoint, variant, config),
		errors5xx:   p.errors.WithLabelValues("5xx", endpoint, variant, config),
		errorsModel: p.errors.WithLabelValues("model", endpoint, variant, config),
		model:       p.modelLatency.WithLabelValues(endpoint, variant, config),
		overhead:    p.overheadLatency.WithLabelValues(endpoint, variant, config),
	}
}

func (p *promVecs) forget(endpoint, variant, config string) {
	p.invocations.DeleteLabelValues(endpoint, variant, config)
	for _, class := range []string{"4xx", "5xx", "model"} {
		p.errors.DeleteLabelValues(class, endpoint, variant, config)
	}
	p.modelLatency.DeleteLabelValues(endpoint, variant, config)
	p.overheadLatency.DeleteLabelValues(endpoint, variant, config)
}

package server

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-serve/kiln"
)

// healthMetrics exposes Kiln's own state on /metrics, read at scrape time.
type healthMetrics struct {
	s           *Server
	instances   *prometheus.Desc
	deployments *prometheus.Desc
	alarmState  *prometheus.Desc
	greenShare  *prometheus.Desc
	waiting     *prometheus.Desc
}

func newHealthMetrics(reg prometheus.Registerer, s *Server) *healthMetrics {
	h := &healthMetrics{
		s:           s,
		instances:   prometheus.NewDesc("kiln_instances", "Model instances by endpoint and state.", []string{"endpoint", "state"}, nil),
		deployments: prometheus.NewDesc("kiln_deployments_in_progress", "Endpoints with an update in progress.", nil, nil),
		alarmState:  prometheus.NewDesc("kiln_alarm_state", "1 for each alarm's current state.", []string{"alarm", "state"}, nil),
		greenShare:  prometheus.NewDesc("kiln_fleet_traffic_share", "Share of its variant's traffic each fleet receives.", []string{"endpoint", "variant", "config", "fleet"}, nil),
		waiting:     prometheus.NewDesc("kiln_invocations_waiting", "Invocations waiting for an instance of their endpoint to start.", nil, nil),
	}
	reg.MustRegister(h)
	return h
}

func (h *healthMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- h.instances
	ch <- h.deployments
	ch <- h.alarmState
	ch <- h.greenShare
	ch <- h.waiting
}

func (h *healthMetrics) Collect(ch chan<- prometheus.Metric) {
	counts := map[[2]string]int{}
	for _, in := range h.s.fleet.Instances() {
		counts[[2]string{in.Endpoint, in.State}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(h.instances, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	h.s.mu.Lock()
	inProgress := 0
	for name, ep := range h.s.endpoints {
		if ep.Deployment != nil {
			inProgress++
		}
		for _, f := range ep.Fleets {
			ch <- prometheus.MustNewConstMetric(h.greenShare, prometheus.GaugeValue, f.TrafficShare, name, f.VariantName, f.EndpointConfigName, f.ID)
		}
	}
	h.s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(h.deployments, prometheus.GaugeValue, float64(inProgress))
	ch <- prometheus.MustNewConstMetric(h.waiting, prometheus.GaugeValue, float64(h.s.gw.Waiting()))
	alarms, _ := h.s.records.Alarms(context.Background())
	for _, a := range alarms {
		name := a.AlarmName
		st, ok := h.s.alarms.State(name)
		if !ok {
			st = a.AlarmState
		}
		for _, v := range []string{kiln.StateOK, kiln.StateAlarm, kiln.StateInsufficientData} {
			val := 0.0
			if st.StateValue == v {
				val = 1
			}
			ch <- prometheus.MustNewConstMetric(h.alarmState, prometheus.GaugeValue, val, name, v)
		}
	}
}

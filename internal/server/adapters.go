package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/alarm"
	"github.com/kiln-serve/kiln/internal/deploy"
	"github.com/kiln-serve/kiln/internal/fleet"
	"github.com/kiln-serve/kiln/internal/gateway"
	"github.com/kiln-serve/kiln/internal/judge"
	"github.com/kiln-serve/kiln/internal/metrics"
	"github.com/kiln-serve/kiln/internal/service"
	"github.com/kiln-serve/kiln/internal/store"
)

// seriesRecorder records the gateway's samples of one fleet into its series.
type seriesRecorder struct {
	series                    *metrics.Series
	endpoint, variant, config string
}

var _ gateway.Recorder = (*seriesRecorder)(nil)

func (r *seriesRecorder) Record(s gateway.Sample) {
	// The error metrics count what the model answered (SageMaker's
	// definition), not the 424 the client got for it.
	status := s.Status
	if s.ModelStatus != 0 {
		status = s.ModelStatus
	}
	r.series.Record(metrics.Sample{
		Status: status, ModelError: s.ModelError,
		ModelLatency: s.ModelLatency, OverheadLatency: s.OverheadLatency,
		Instances: s.Instances, Time: s.Time,
	})
}

// AlarmSource gives the alarm engine Kiln's own metrics. The simulation in
// internal/sim uses it too, so that it evaluates alarms exactly as the
// server does.
// custom, if not nil, holds the metrics clients published.
func AlarmSource(m *metrics.Store, custom *metrics.Custom) alarm.Source {
	return localSource{m, custom}
}

type localSource struct {
	m      *metrics.Store
	custom *metrics.Custom
}

func (l localSource) Datapoints(ctx context.Context, a *kiln.Alarm, start, end time.Time) ([]alarm.Datapoint, error) {
	pts, err := queryMetrics(l.m, l.custom, metrics.Query{
		Namespace: a.Namespace, MetricName: a.MetricName, Dimensions: dimensionMap(a.Dimensions),
		Statistic: a.Stat(), Period: time.Duration(a.Period) * time.Second, Start: start, End: end,
	})
	if err != nil {
		return nil, err
	}
	out := make([]alarm.Datapoint, len(pts))
	for i, p := range pts {
		out[i] = alarm.Datapoint{Timestamp: p.Timestamp, Value: p.Value, SampleCount: p.SampleCount}
	}
	return out, nil
}

// alarmRepo stores the alarm engine's state changes.
type alarmRepo struct{ r *service.Records }

func (r alarmRepo) ListAlarms(ctx context.Context) ([]kiln.Alarm, error) {
	return r.r.Alarms(ctx)
}

func (r alarmRepo) SaveState(ctx context.Context, name string, st kiln.AlarmState, _ kiln.AlarmHistoryItem) error {
	_, err := r.r.SaveAlarmState(ctx, name, func(*kiln.Alarm) (kiln.AlarmState, bool) { return st, true })
	if kiln.ErrorCode(err) == kiln.ENOTFOUND {
		return nil // deleted meanwhile
	}
	return err
}

// deployStore gives the controller the endpoint records.
type deployStore struct{ r *service.Records }

func (d deployStore) GetEndpoint(ctx context.Context, name string) (kiln.Endpoint, int64, error) {
	return d.r.Endpoint(ctx, name)
}

func (d deployStore) PutEndpoint(ctx context.Context, ep kiln.Endpoint, rev int64) (int64, error) {
	r, err := d.r.PutEndpoint(ctx, ep, rev)
	if errors.Is(err, store.ErrConflict) {
		return 0, fmt.Errorf("%w: %v", deploy.ErrConflict, err)
	}
	return r, err
}

func (d deployStore) AppendHistory(ctx context.Context, endpoint string, evs []kiln.HistoryEvent) error {
	return d.r.AppendHistory(ctx, endpoint, evs)
}

func (d deployStore) ListEndpoints(ctx context.Context) ([]kiln.Endpoint, error) {
	return d.r.Endpoints(ctx)
}

// fleetView gives the service the instances of the fleet manager.
type fleetView struct{ s *Server }

var _ service.Fleet = fleetView{}

func (v fleetView) Instances(endpoint string) []kiln.InstanceInfo { return v.s.instancesOf(endpoint) }
func (v fleetView) LogFiles(endpoint string) []string             { return v.s.fleet.LogFiles(endpoint) }
func (v fleetView) CheckImage(image string) error                 { return v.s.fleet.CheckImage(image) }

// fleetStatus gives the controller the health of fleets.
type fleetStatus struct{ m *fleet.Manager }

func (f fleetStatus) FleetStatus(endpoint, fleetID string) deploy.FleetStatus {
	st := f.m.FleetStatus(endpoint, fleetID)
	return deploy.FleetStatus{Healthy: st.Healthy, Starting: st.Starting, LaunchFailed: st.LaunchFailed, Reason: st.Reason}
}

// fleetRecorder is the gateway's recorder of one fleet in one routing
// table: it feeds the fleet's metrics series and the judges. apply builds
// a new one with every table, so share is the one the table routes with.
type fleetRecorder struct {
	metrics *seriesRecorder
	judge   *judge.Recorder
	// share is the new fleets' share of the variant's traffic (0 outside
	// a deployment).
	share float64
}

var _ gateway.Recorder = (*fleetRecorder)(nil)

func (r *fleetRecorder) Record(s gateway.Sample) {
	r.metrics.Record(s)
	status := s.Status
	if s.ModelStatus != 0 {
		status = s.ModelStatus
	}
	r.judge.Record(judge.Sample{Error: s.ModelError || status >= 500, Latency: s.ModelLatency, Share: r.share})
}

// judgeVerdicts gives the controller what judge alarms say beyond their
// states.
type judgeVerdicts struct{ j *judge.Judges }

func (a judgeVerdicts) Verdict(name string) (deploy.JudgeVerdict, bool) {
	v, ok := a.j.Verdict(name)
	return deploy.JudgeVerdict{Wait: v.Wait, Promote: v.Promote}, ok
}

package ui

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
)

// Snapshot is one second of an endpoint as the dashboard shows it: the
// record, the traffic on old and new fleets, each fleet's metrics over the
// last complete second, the alarms that matter to it, and what happened
// since the previous snapshot of the same stream.
type Snapshot struct {
	// Time is when the snapshot was taken; Second is the start of the
	// second whose metrics it carries (the last complete one).
	Time   time.Time `json:"Time"`
	Second time.Time `json:"Second"`

	Endpoint *kiln.Endpoint `json:"Endpoint"`
	// Share is the share of the endpoint's traffic on the deployment's old
	// (Blue) and new (Green) fleets now, each variant weighted by its
	// weight. With no deployment in progress every fleet counts as blue.
	Share Share `json:"Share"`
	// GreenSharePeak is the highest share on green since the previous
	// snapshot, taken from the deployment's transitions as well as from
	// now, so that a step shorter than a second still shows.
	GreenSharePeak float64 `json:"GreenSharePeak"`
	// Fleets are the endpoint's fleets now, each with its metrics over
	// Second.
	Fleets []FleetSnapshot `json:"Fleets"`
	// Series are the endpoint's metrics from the metrics store, per variant
	// and endpoint config, for the seconds from SeriesFrom to Second: the
	// last Backfill in the first snapshot of a stream, the last few seconds
	// in the next ones. They include the configs no fleet runs any more, so
	// the charts keep what a short-lived fleet answered; a page replaces
	// what it had for those seconds.
	SeriesFrom time.Time       `json:"SeriesFrom"`
	Series     []MetricSeries  `json:"Series"`
	Alarms     []AlarmSnapshot `json:"Alarms"`
	// AlarmTransitions are the alarms' state changes since the previous
	// snapshot (the last few, in the first snapshot of a stream).
	AlarmTransitions []AlarmTransition `json:"AlarmTransitions"`
	// History holds the deployment transitions since the previous
	// snapshot; when HistoryComplete is true it is the endpoint's whole
	// history and replaces what the page had.
	History         []kiln.HistoryEvent `json:"History"`
	HistoryComplete bool                `json:"HistoryComplete"`
	// Errors name the parts that could not be read this second.
	Errors []string `json:"Errors,omitempty"`
}

// Share is a split of an endpoint's traffic between old and new fleets.
type Share struct {
	Blue  float64 `json:"Blue"`
	Green float64 `json:"Green"`
}

// Fleet roles.
const (
	RoleBlue  = "blue"  // serving before the deployment, or no deployment
	RoleGreen = "green" // the deployment's new fleets
)

// FleetSnapshot is one fleet with its last second of metrics.
type FleetSnapshot struct {
	ID                  string       `json:"ID"`
	Role                string       `json:"Role"`
	VariantName         string       `json:"VariantName"`
	EndpointConfigName  string       `json:"EndpointConfigName"`
	ModelName           string       `json:"ModelName"`
	InstanceCount       int          `json:"InstanceCount"`
	ActiveInstanceCount int          `json:"ActiveInstanceCount"`
	TrafficShare        float64      `json:"TrafficShare"`  // of its variant's traffic
	EndpointShare       float64      `json:"EndpointShare"` // of the endpoint's traffic
	Metrics             FleetMetrics `json:"Metrics"`
}

// FleetMetrics are one fleet's metrics over one second. The counts are zero
// and the latencies null when no request finished in that second.
type FleetMetrics struct {
	Invocations         float64 `json:"Invocations"`
	Invocation4XXErrors float64 `json:"Invocation4XXErrors"`
	Invocation5XXErrors float64 `json:"Invocation5XXErrors"`
	// ModelLatency percentiles, in microseconds as CloudWatch reports them.
	ModelLatencyP50 *float64 `json:"ModelLatencyP50"`
	ModelLatencyP99 *float64 `json:"ModelLatencyP99"`
}

// Charts on the endpoint page that an alarm's threshold can be drawn on.
const (
	ChartInvocations = "invocations" // per second
	ChartErrors4XX   = "errors4xx"   // per second
	ChartErrors5XX   = "errors5xx"   // per second
	ChartLatency     = "latency"     // milliseconds
)

// AlarmSnapshot is an alarm's definition and state as the page shows it.
type AlarmSnapshot struct {
	AlarmName                  string           `json:"AlarmName"`
	StateValue                 string           `json:"StateValue"`
	StateReason                string           `json:"StateReason"`
	StateTransitionedTimestamp time.Time        `json:"StateTransitionedTimestamp"`
	MetricName                 string           `json:"MetricName,omitempty"`
	AlarmRule                  string           `json:"AlarmRule,omitempty"`
	Statistic                  string           `json:"Statistic,omitempty"`
	Dimensions                 []kiln.Dimension `json:"Dimensions,omitempty"`
	Period                     int              `json:"Period"`
	EvaluationPeriods          int              `json:"EvaluationPeriods"`
	DatapointsToAlarm          int              `json:"DatapointsToAlarm"`
	Threshold                  float64          `json:"Threshold"`
	ComparisonOperator         string           `json:"ComparisonOperator"`
	// Source is "metric", "prometheus" or "judge".
	Source string `json:"Source"`
	// Watched is true for an alarm the deployment in progress (or else the
	// endpoint's last deployment config) rolls back on.
	Watched bool `json:"Watched"`
	// Chart names the chart the threshold is drawn on, with ChartThreshold
	// in that chart's unit, when the alarm's metric is on one: a Sum over a
	// period of N seconds becomes a rate per second, a latency is in ms.
	Chart          string   `json:"Chart,omitempty"`
	ChartThreshold *float64 `json:"ChartThreshold,omitempty"`
}

// recentTransitions is how many past state changes of an alarm a stream
// sends when it first shows the alarm.
const recentTransitions = 5

// AlarmTransition is one change of an alarm's state.
type AlarmTransition struct {
	AlarmName string    `json:"AlarmName"`
	Time      time.Time `json:"Time"`
	From      string    `json:"From"`
	To        string    `json:"To"`
	Reason    string    `json:"Reason,omitempty"`
}

// Metric names and statistics the snapshot reads.
const (
	namespace     = "AWS/SageMaker"
	mInvocations  = "Invocations"
	m4XX          = "Invocation4XXErrors"
	m5XX          = "Invocation5XXErrors"
	mModelLatency = "ModelLatency"
)

// shares returns the split of the endpoint's traffic between old and new
// fleets, and each fleet's share of the endpoint's traffic: a fleet's share
// of its variant times the variant's weight among all variants (equal
// weights if they add up to zero), as the gateway routes.
func shares(ep *kiln.Endpoint) (Share, map[string]float64) {
	green := map[string]bool{}
	if d := ep.Deployment; d != nil && d.Kind != kiln.DeployCreate {
		for _, id := range d.Green {
			green[id] = true
		}
	}
	weights := map[string]float64{}
	total := 0.0
	for _, v := range ep.ProductionVariants {
		weights[v.VariantName] = v.CurrentWeight
		total += v.CurrentWeight
	}
	var s Share
	perFleet := make(map[string]float64, len(ep.Fleets))
	for _, f := range ep.Fleets {
		w := 1.0
		if total > 0 {
			w = weights[f.VariantName] / total
		} else if n := len(ep.ProductionVariants); n > 0 {
			w = 1 / float64(n)
		}
		share := w * f.TrafficShare
		perFleet[f.ID] = share
		if green[f.ID] {
			s.Green += share
		} else {
			s.Blue += share
		}
	}
	return s, perFleet
}

// stream is the state one events stream keeps between snapshots.
type stream struct {
	h        *handler
	endpoint string
	// lastHistory is the last history event sent, nil if there was none;
	// historySent is false until the first snapshot.
	lastHistory *kiln.HistoryEvent
	historySent bool
	// transitioned holds each alarm's StateTransitionedTimestamp as last
	// seen, to fetch its history only when its state changed.
	transitioned map[string]time.Time
	// createIDs are deployments seen to be the endpoint's creation, whose
	// transitions are not a move of traffic to new fleets.
	createIDs map[string]bool
	// lastSecond is the Second of the previous snapshot, zero before the
	// first.
	lastSecond time.Time
}

func newStream(h *handler, endpoint string) *stream {
	return &stream{h: h, endpoint: endpoint, transitioned: map[string]time.Time{}, createIDs: map[string]bool{}}
}

// errEndpointGone is returned when the endpoint no longer exists.
type errEndpointGone struct{ err error }

func (e errEndpointGone) Error() string { return e.err.Error() }

// snapshot reads everything one second of the stream shows. Only a failure
// to read the endpoint itself is an error; other failures are listed in the
// snapshot's Errors.
func (s *stream) snapshot(ctx context.Context) (*Snapshot, error) {
	svc := s.h.svc
	now := s.h.clk.Now().UTC()
	ep, err := svc.GetEndpoint(ctx, s.endpoint)
	if err != nil {
		if kiln.ErrorCode(err) == kiln.ENOTFOUND {
			return nil, errEndpointGone{err}
		}
		return nil, err
	}
	if d := ep.Deployment; d != nil && d.Kind == kiln.DeployCreate {
		s.createIDs[d.ID] = true
	}
	second := now.Truncate(time.Second).Add(-time.Second)
	share, perFleet := shares(ep)
	snap := &Snapshot{
		Time: now, Second: second, Endpoint: ep, Share: share, GreenSharePeak: share.Green,
		Fleets: []FleetSnapshot{}, Series: []MetricSeries{}, Alarms: []AlarmSnapshot{}, AlarmTransitions: []AlarmTransition{}, History: []kiln.HistoryEvent{},
	}
	fail := func(what string, err error) {
		s.h.log.Debug("dashboard: reading "+what, "endpoint", s.endpoint, "err", err)
		snap.Errors = append(snap.Errors, fmt.Sprintf("%s: %s", what, kiln.ErrorMessage(err)))
	}

	green := map[string]bool{}
	if d := ep.Deployment; d != nil && d.Kind != kiln.DeployCreate {
		for _, id := range d.Green {
			green[id] = true
		}
	}
	for _, f := range ep.Fleets {
		fs := FleetSnapshot{
			ID: f.ID, Role: RoleBlue, VariantName: f.VariantName, EndpointConfigName: f.EndpointConfigName, ModelName: f.ModelName,
			InstanceCount: f.InstanceCount, ActiveInstanceCount: f.ActiveInstanceCount,
			TrafficShare: f.TrafficShare, EndpointShare: perFleet[f.ID],
		}
		if green[f.ID] {
			fs.Role = RoleGreen
		}
		snap.Fleets = append(snap.Fleets, fs)
	}
	if err := s.addSeries(ctx, snap); err != nil {
		fail("metrics", err)
	}

	if err := s.addHistory(ctx, snap); err != nil {
		fail("deployment history", err)
	}
	if err := s.addAlarms(ctx, snap); err != nil {
		fail("alarms", err)
	}
	return snap, nil
}

// addHistory adds the deployment transitions the page has not seen, and
// raises the snapshot's green peak to what they moved traffic to.
func (s *stream) addHistory(ctx context.Context, snap *Snapshot) error {
	evs, err := s.h.svc.EndpointHistory(ctx, s.endpoint)
	if err != nil {
		return err
	}
	start := -1 // where the new events start; -1 to send them all
	switch {
	case !s.historySent:
	case s.lastHistory == nil:
		start = 0
	default:
		for i := len(evs) - 1; i >= 0; i-- {
			if sameEvent(evs[i], *s.lastHistory) {
				start = i + 1
				break
			}
		}
	}
	if start < 0 {
		// The first snapshot, or the history changed under us (the
		// endpoint was deleted and made again): send it all.
		snap.History = evs
		snap.HistoryComplete = true
	} else {
		snap.History = evs[start:]
		// Only transitions since the previous snapshot raise the peak: the
		// first snapshot's history is the past.
		for _, ev := range snap.History {
			if !s.createIDs[ev.DeploymentID] {
				snap.GreenSharePeak = max(snap.GreenSharePeak, ev.GreenShare)
			}
		}
	}
	if snap.History == nil {
		snap.History = []kiln.HistoryEvent{}
	}
	if n := len(evs); n > 0 {
		last := evs[n-1]
		s.lastHistory = &last
	} else {
		s.lastHistory = nil
	}
	s.historySent = true
	return nil
}

func sameEvent(a, b kiln.HistoryEvent) bool {
	return a.Time.Equal(b.Time) && a.DeploymentID == b.DeploymentID && a.Phase == b.Phase && a.Step == b.Step && a.Message == b.Message
}

// watchedAlarms returns the names of the alarms the endpoint's deployment in
// progress watches, or else those its last deployment config names.
func watchedAlarms(ep *kiln.Endpoint) []string {
	if d := ep.Deployment; d != nil && d.DeploymentConfig != nil {
		return d.DeploymentConfig.AlarmNames()
	}
	return ep.LastDeploymentConfig.AlarmNames()
}

// addAlarms adds the alarms that matter to the endpoint: those its
// deployment watches, and those on its own metrics.
func (s *stream) addAlarms(ctx context.Context, snap *Snapshot) error {
	all, err := s.h.svc.ListAlarms(ctx)
	if err != nil {
		return err
	}
	watched := map[string]bool{}
	for _, n := range watchedAlarms(snap.Endpoint) {
		watched[n] = true
	}
	var errs []string
	for i := range all {
		a := &all[i]
		onEndpoint := a.Dimension("EndpointName") == s.endpoint || (a.Judge != nil && a.Judge.EndpointName == s.endpoint)
		if !watched[a.AlarmName] && !onEndpoint {
			continue
		}
		snap.Alarms = append(snap.Alarms, alarmSnapshot(a, s.endpoint, watched[a.AlarmName]))

		seen, ok := s.transitioned[a.AlarmName]
		s.transitioned[a.AlarmName] = a.StateTransitionedTimestamp
		if ok && seen.Equal(a.StateTransitionedTimestamp) {
			continue
		}
		// The state changed (or this stream has not looked yet): read the
		// alarm's history for the transitions, which may be several within
		// one second.
		items, err := s.h.svc.AlarmHistory(ctx, a.AlarmName)
		if err != nil {
			errs = append(errs, fmt.Sprintf("history of %s: %s", a.AlarmName, kiln.ErrorMessage(err)))
			continue
		}
		var ts []AlarmTransition
		for _, it := range items {
			if t, isState := parseTransition(it); isState && (!ok || t.Time.After(seen)) {
				ts = append(ts, t)
			}
		}
		if !ok && len(ts) > recentTransitions {
			// An alarm new to this stream: its recent past is context
			// enough.
			ts = ts[len(ts)-recentTransitions:]
		}
		snap.AlarmTransitions = append(snap.AlarmTransitions, ts...)
	}
	slices.SortStableFunc(snap.Alarms, func(a, b AlarmSnapshot) int {
		if a.Watched != b.Watched {
			if a.Watched {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.AlarmName, b.AlarmName)
	})
	slices.SortStableFunc(snap.AlarmTransitions, func(a, b AlarmTransition) int { return a.Time.Compare(b.Time) })
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// parseTransition reads a state change out of an alarm history item, whose
// HistoryData is CloudWatch's {"oldState": {...}, "newState": {...}}.
func parseTransition(it kiln.AlarmHistoryItem) (AlarmTransition, bool) {
	if it.HistoryItemType != "StateUpdate" {
		return AlarmTransition{}, false
	}
	var data struct {
		OldState struct {
			StateValue string `json:"stateValue"`
		} `json:"oldState"`
		NewState struct {
			StateValue  string `json:"stateValue"`
			StateReason string `json:"stateReason"`
		} `json:"newState"`
	}
	if json.Unmarshal([]byte(it.HistoryData), &data) != nil || data.NewState.StateValue == "" || data.OldState.StateValue == data.NewState.StateValue {
		return AlarmTransition{}, false
	}
	return AlarmTransition{AlarmName: it.AlarmName, Time: it.Timestamp, From: data.OldState.StateValue, To: data.NewState.StateValue, Reason: data.NewState.StateReason}, true
}

func alarmSnapshot(a *kiln.Alarm, endpoint string, watched bool) AlarmSnapshot {
	as := AlarmSnapshot{
		AlarmName: a.AlarmName, StateValue: a.StateValue, StateReason: a.StateReason, StateTransitionedTimestamp: a.StateTransitionedTimestamp,
		MetricName: a.MetricName, Statistic: a.Stat(), Dimensions: a.Dimensions,
		Period: a.Period, EvaluationPeriods: a.EvaluationPeriods, DatapointsToAlarm: a.Datapoints(),
		Threshold: a.Threshold, ComparisonOperator: a.ComparisonOperator,
		Source: "metric", Watched: watched,
	}
	switch {
	case a.AlarmRule != "":
		as.Source, as.AlarmRule = "composite", a.AlarmRule
		return as
	case a.Judge != nil:
		as.Source = "judge"
		return as
	case a.Prometheus != nil:
		as.Source = "prometheus"
		return as
	}
	as.Chart, as.ChartThreshold = chartOf(a, endpoint)
	return as
}

// chartOf returns the chart an alarm's threshold can be drawn on, and the
// threshold in that chart's unit; "" when no chart shows what it measures.
func chartOf(a *kiln.Alarm, endpoint string) (string, *float64) {
	if a.Dimension("EndpointName") != endpoint || (a.Namespace != "" && a.Namespace != namespace) || a.Period < 1 {
		return "", nil
	}
	stat := a.Stat()
	perSecond := func(chart string) (string, *float64) {
		// The charts count per second: a Sum over N seconds above T is,
		// on average, a rate above T/N.
		if stat != "Sum" && !(stat == "SampleCount" && a.MetricName == mInvocations) {
			return "", nil
		}
		v := a.Threshold / float64(a.Period)
		return chart, &v
	}
	switch a.MetricName {
	case mInvocations:
		return perSecond(ChartInvocations)
	case m4XX:
		return perSecond(ChartErrors4XX)
	case m5XX:
		return perSecond(ChartErrors5XX)
	case mModelLatency:
		if stat == "Sum" || stat == "SampleCount" {
			return "", nil
		}
		v := a.Threshold / 1000 // microseconds to the chart's milliseconds
		return ChartLatency, &v
	}
	return "", nil
}

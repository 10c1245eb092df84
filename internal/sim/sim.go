package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/alarm"
	"github.com/kiln-serve/kiln/internal/clock"
	"github.com/kiln-serve/kiln/internal/deploy"
	"github.com/kiln-serve/kiln/internal/judge"
	"github.com/kiln-serve/kiln/internal/metrics"
	"github.com/kiln-serve/kiln/internal/server"
)

// Fleet is how a simulated fleet answers: each request fails with
// probability ErrorRate, and takes a lognormal latency with median Median
// and log-scale spread Sigma.
type Fleet struct {
	ErrorRate float64
	Median    time.Duration
	Sigma     float64
}

// P99 is the fleet's 99th percentile latency.
func (f Fleet) P99() time.Duration {
	return time.Duration(float64(f.Median) * math.Exp(z99*f.Sigma))
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// WithP99 returns the fleet with a tail that makes its 99th percentile
// factor times longer, its median unchanged: a regression of the tail, the
// kind a p99 alarm is for.
func (f Fleet) WithP99(factor float64) Fleet {
	f.Sigma += math.Log(factor) / z99
	return f
}

func (f Fleet) draw(rng *rand.Rand) (failed bool, latency time.Duration) {
	failed = f.ErrorRate > 0 && rng.Float64() < f.ErrorRate
	latency = time.Duration(float64(f.Median) * math.Exp(f.Sigma*rng.NormFloat64()))
	return failed, latency
}

// Method is a way to decide rollbacks: the alarms listed in the
// deployment's AutoRollbackConfiguration.
type Method struct {
	Name   string
	Alarms []kiln.Alarm
}

// Scenario is one simulated deployment.
type Scenario struct {
	// Rate is the endpoint's traffic in requests per second.
	Rate int
	// Blue is the live fleet, Green the new one.
	Blue, Green Fleet
	// Seed makes the run reproducible.
	Seed uint64
	// Deployment is the update's DeploymentConfig, without its alarms; each
	// method lists its own. If nil, DefaultDeployment.
	Deployment *kiln.DeploymentConfig
	// Launch is how long the new instances take to pass their health
	// checks; the old fleet serves alone meanwhile. If zero, 2 minutes
	// and a random number of seconds below 60, so that traffic reaches the
	// new fleet at any point of a minute, as it would for real.
	Launch time.Duration
	// EveryLook calls Next every second as the controller's periodic look
	// does, even when nothing it sees has changed and its wake-up time has
	// not come, which Next says cannot change anything. Slower; for
	// checking that the shortcut changes nothing.
	EveryLook bool
}

// DefaultDeployment is a canary of 10% (one instance of ten) baked for ten
// minutes, then five minutes of final bake with all traffic on the new
// fleet.
func DefaultDeployment() *kiln.DeploymentConfig {
	return &kiln.DeploymentConfig{BlueGreenUpdatePolicy: &kiln.BlueGreenUpdatePolicy{
		TrafficRoutingConfiguration: &kiln.TrafficRoutingConfig{
			Type: kiln.Canary, WaitIntervalInSeconds: 600,
			CanarySize: &kiln.CapacitySize{Type: kiln.CapacityPercent, Value: 10},
		},
		TerminationWaitInSeconds: 300,
	}}
}

// Outcome is what happened to one method's deployment.
type Outcome struct {
	// RolledBack reports that an alarm rolled the update back; Reason is
	// the endpoint's FailureReason.
	RolledBack bool
	Reason     string
	// Time runs from the first request routed to the new fleet until the
	// rollback's routing swap (or the update's end).
	Time time.Duration
	// FailedRequests and GreenRequests count the requests the new fleet
	// answered, and those of them that failed, over Time.
	FailedRequests, GreenRequests int64
}

// Names the simulated endpoint uses.
const (
	Endpoint = "sim"
	Variant  = "AllTraffic"
	BlueCfg  = "sim-blue"
	GreenCfg = "sim-green"
	// Instances in each fleet: a 10% canary is one instance.
	Instances = 10
)

var models = map[string]kiln.Model{
	"blue":  {ModelName: "blue", PrimaryContainer: &kiln.ContainerDef{Image: "serve --version 1"}},
	"green": {ModelName: "green", PrimaryContainer: &kiln.ContainerDef{Image: "serve --version 2"}},
}

func endpointConfig(name, model string) kiln.EndpointConfig {
	return kiln.EndpointConfig{EndpointConfigName: name, ProductionVariants: []kiln.ProductionVariant{
		{VariantName: Variant, ModelName: model, InitialInstanceCount: Instances},
	}}
}

// replica is one method's copy of the endpoint record. Every replica runs
// the same update on the same traffic; they differ only in the alarms they
// watch, so their records agree until one of them rolls back, and from then
// on that one is out of the race with its outcome decided.
type replica struct {
	method  Method
	names   []string
	ep      kiln.Endpoint
	done    bool
	outcome Outcome
	// After a look that changed nothing: what was observed, and the
	// wake-up time Next gave. Until one of them changes another look
	// would change nothing either (Next is pure and says when it must be
	// looked at again), so it is skipped unless Scenario.EveryLook.
	seen string
	wake time.Time
}

// Run simulates one update of an endpoint from Blue to Green for every
// method at once, on the same requests, and returns each method's outcome.
//
// Everything is the real thing but the traffic and the clock: the records
// come from deploy.StartCreate, deploy.StartUpdate and deploy.Next, applied
// as the controller applies them (one transition at a time, looked at every
// second); the requests are recorded in a metrics.Store and in judge.Judges
// as the gateway would record them; the alarms are evaluated by an
// alarm.Engine, threshold alarms on the metrics store's data points, when
// the engine would evaluate them. The clock is a fake one, advanced a second
// at a time; there are no goroutines and no sockets, and a Scenario always
// gives the same outcomes.
func Run(sc Scenario, methods []Method) ([]Outcome, error) {
	if sc.Deployment == nil {
		sc.Deployment = DefaultDeployment()
	}
	ctx := context.Background()
	clk := clock.NewFake()
	rng := rand.New(rand.NewPCG(sc.Seed, 0x6b696c6e))
	if sc.Launch == 0 {
		sc.Launch = 2*time.Minute + time.Duration(rng.IntN(60))*time.Second
	}
	store := metrics.New(clk, nil)
	judges := judge.New(clk)

	var all []kiln.Alarm
	for _, m := range methods {
		all = append(all, m.Alarms...)
	}
	engine := alarm.NewEngine(alarm.Config{Clock: clk, Local: server.AlarmSource(store, nil), Judges: judges})
	engine.Reload(all)
	for _, a := range all {
		if _, err := engine.EvaluateNow(ctx, a.AlarmName); err != nil {
			return nil, fmt.Errorf("alarm %s: %w", a.AlarmName, err)
		}
	}

	// The endpoint, in service on the old config.
	now := clk.Now()
	ep, err := deploy.StartCreate(kiln.CreateEndpointInput{EndpointName: Endpoint, EndpointConfigName: BlueCfg},
		endpointConfig(BlueCfg, "blue"), models, "arn:aws:sagemaker:us-east-1:000000000000:endpoint/"+Endpoint, now)
	if err != nil {
		return nil, fmt.Errorf("create endpoint: %w", err)
	}
	healthy := func(kiln.Endpoint) deploy.Observation {
		obs := deploy.Observation{Fleets: map[string]deploy.FleetStatus{}}
		for _, f := range ep.Fleets {
			obs.Fleets[f.ID] = deploy.FleetStatus{Healthy: f.InstanceCount}
		}
		return obs
	}
	for ep.Deployment != nil {
		next, _, _, err := deploy.Next(ep, healthy(ep), now)
		if err != nil {
			return nil, fmt.Errorf("create endpoint: %w", err)
		}
		if next.Deployment != nil && next.Deployment == ep.Deployment {
			return nil, fmt.Errorf("create endpoint: no progress")
		}
		ep = next
	}

	// The update, once per method.
	started := now
	reps := make([]*replica, len(methods))
	for i, m := range methods {
		dc := cloneDeployment(sc.Deployment)
		dc.AutoRollbackConfiguration = &kiln.AutoRollbackConfiguration{}
		r := &replica{method: m}
		for _, a := range m.Alarms {
			dc.AutoRollbackConfiguration.Alarms = append(dc.AutoRollbackConfiguration.Alarms, kiln.AlarmRef{AlarmName: a.AlarmName})
			r.names = append(r.names, a.AlarmName)
		}
		if len(m.Alarms) == 0 {
			dc.AutoRollbackConfiguration = nil
		}
		r.ep, err = deploy.StartUpdate(ep, endpointConfig(GreenCfg, "green"), models,
			kiln.UpdateEndpointInput{EndpointName: Endpoint, EndpointConfigName: GreenCfg, DeploymentConfig: dc},
			func(string) bool { return true }, now)
		if err != nil {
			return nil, fmt.Errorf("method %s: start update: %w", m.Name, err)
		}
		reps[i] = r
	}
	judges.Reset(Endpoint)

	blueSeries := store.Series(Endpoint, Variant, BlueCfg)
	greenSeries := store.Series(Endpoint, Variant, GreenCfg)
	blueRec := judges.Recorder(Endpoint, "blue", false)
	greenRec := judges.Recorder(Endpoint, "green", true)

	var greenStart time.Time
	var greenFailed, greenServed int64
	const limit = 10 * time.Hour // beyond the longest MaximumExecutionTimeoutInSeconds
	for now.Sub(started) < limit {
		// The controller's look at every endpoint, once a second.
		share, forwarding := -1.0, 0
		for _, r := range reps {
			if r.done {
				continue
			}
			ended, err := r.advance(engine, now, started.Add(sc.Launch), sc.EveryLook)
			if err != nil {
				return nil, err
			}
			if ended {
				r.finish(now, greenStart, greenFailed, greenServed)
				continue
			}
			s := greenShare(r.ep)
			if share >= 0 && s != share {
				return nil, fmt.Errorf("method %s routes %v to the new fleet while another routes %v: replicas diverged", r.method.Name, s, share)
			}
			share = s
			forwarding++
		}
		if forwarding == 0 {
			break
		}

		// A second of requests, routed as the record says.
		if share > 0 && greenStart.IsZero() {
			greenStart = now
		}
		for i := range sc.Rate {
			t := now.Add(time.Duration(i) * time.Second / time.Duration(sc.Rate))
			toGreen := share >= 1 || share > 0 && rng.Float64() < share
			f, series, rec := sc.Blue, blueSeries, blueRec
			if toGreen {
				f, series, rec = sc.Green, greenSeries, greenRec
			}
			failed, lat := f.draw(rng)
			status := 200
			if failed {
				status = 500
			}
			series.Record(metrics.Sample{Status: status, ModelError: failed, ModelLatency: lat, Instances: Instances, Time: t})
			rec.Record(judge.Sample{Error: failed, Latency: lat, Share: share})
			if toGreen {
				greenServed++
				if failed {
					greenFailed++
				}
			}
		}

		clk.Advance(time.Second)
		now = clk.Now()
		// The alarm engine's tick: alarms with periods under a minute on
		// every tick, longer ones when a period completes.
		for _, a := range all {
			if a.Judge == nil && a.Period >= 60 && now.Unix()%int64(a.Period) != 0 {
				continue
			}
			if _, err := engine.EvaluateNow(ctx, a.AlarmName); err != nil {
				return nil, fmt.Errorf("alarm %s: %w", a.AlarmName, err)
			}
		}
	}
	out := make([]Outcome, len(reps))
	for i, r := range reps {
		if !r.done {
			return nil, fmt.Errorf("method %s: the update did not end within %v", r.method.Name, limit)
		}
		out[i] = r.outcome
	}
	return out, nil
}

// advance applies Next to the replica's record until it has nothing more
// to do now, as the controller's reconcile does. The new instances pass
// their health checks at ready. It reports that the replica's update has
// ended: completed, or rolled back as far as the routing swap that gives
// all traffic back to the old fleet.
func (r *replica) advance(engine *alarm.Engine, now, ready time.Time, every bool) (bool, error) {
	for range 64 {
		obs := deploy.Observation{Fleets: map[string]deploy.FleetStatus{}, Alarms: map[string]kiln.AlarmState{}}
		seen := fmt.Sprint(now.Before(ready))
		for _, f := range r.ep.Fleets {
			st := deploy.FleetStatus{Healthy: f.InstanceCount}
			if f.EndpointConfigName == GreenCfg && now.Before(ready) {
				st = deploy.FleetStatus{Healthy: f.ActiveInstanceCount, Starting: f.InstanceCount - f.ActiveInstanceCount}
			}
			obs.Fleets[f.ID] = st
		}
		for _, name := range r.names {
			if st, ok := engine.State(name); ok {
				obs.Alarms[name] = st
				seen += "/" + st.StateValue
			}
		}
		if !every && seen == r.seen && (r.wake.IsZero() || now.Before(r.wake)) {
			return false, nil
		}
		next, _, wake, err := deploy.Next(r.ep, obs, now)
		if err != nil {
			return false, fmt.Errorf("method %s: %w", r.method.Name, err)
		}
		if next.Deployment == r.ep.Deployment {
			// Next returned the record itself: nothing to do until what
			// it sees changes or wake comes.
			r.seen, r.wake = seen, wake
			return false, nil
		}
		r.seen, r.wake = "", time.Time{}
		r.ep = next
		if r.ep.Deployment == nil || r.ep.Deployment.Phase == kiln.PhaseRollingBack && greenShare(r.ep) == 0 {
			return true, nil
		}
	}
	return false, fmt.Errorf("method %s: still moving after 64 transitions", r.method.Name)
}

// finish records the outcome of an update that ended at now.
func (r *replica) finish(now, greenStart time.Time, failed, served int64) {
	r.done = true
	if d := r.ep.Deployment; d != nil {
		r.outcome.RolledBack, r.outcome.Reason = true, d.RollbackReason
	} else if r.ep.FailureReason != "" {
		r.outcome.RolledBack, r.outcome.Reason = true, r.ep.FailureReason
	}
	if !greenStart.IsZero() {
		r.outcome.Time = now.Sub(greenStart)
	}
	r.outcome.FailedRequests, r.outcome.GreenRequests = failed, served
}

// greenShare is the new fleet's share of the variant's traffic.
func greenShare(ep kiln.Endpoint) float64 {
	for _, f := range ep.Fleets {
		if f.EndpointConfigName == GreenCfg {
			return f.TrafficShare
		}
	}
	return 0
}

func cloneDeployment(dc *kiln.DeploymentConfig) *kiln.DeploymentConfig {
	c := *dc
	if dc.BlueGreenUpdatePolicy != nil {
		p := *dc.BlueGreenUpdatePolicy
		if p.TrafficRoutingConfiguration != nil {
			t := *p.TrafficRoutingConfiguration
			p.TrafficRoutingConfiguration = &t
		}
		c.BlueGreenUpdatePolicy = &p
	}
	return &c
}

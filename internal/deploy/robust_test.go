package deploy

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// TestNextNeverPanics feeds Next records from real deployments with random
// parts corrupted, and random observations: it must return an error or a
// record, never panic, and keep going from whatever it returns.
func TestNextNeverPanics(t *testing.T) {
	var pool []kiln.Endpoint
	collect := func(w *world) {
		for _, r := range w.records {
			pool = append(pool, r.ep)
		}
	}
	for _, dc := range []*kiln.DeploymentConfig{
		canaryConfig(pct(25), 60, 60, "a"), linearConfig(pct(25), 60, 0, "a"),
		allAtOnceConfig(0, 0), rollingConfig(pct(25), count(1), 60, "a"),
	} {
		w := created(t, c1)
		w.update(c2, dc)
		w.hook = func(w *world) {
			if w.now.Sub(t0) > 100*time.Second {
				w.setAlarm("a", kiln.StateAlarm, "x")
			}
		}
		w.settle()
		collect(w)
	}
	ep, _ := StartCreate(kiln.CreateEndpointInput{EndpointName: "ep"}, c1, testModels, testARN, t0)
	pool = append(pool, ep)

	rng := rand.New(rand.NewPCG(7, 8))
	n := 5000
	if testing.Short() {
		n = 1000
	}
	for i := range n {
		ep := cloneEndpoint(pool[rng.IntN(len(pool))])
		for range 1 + rng.IntN(3) {
			corrupt(rng, &ep)
		}
		obs := Observation{Fleets: map[string]FleetStatus{}, Alarms: map[string]kiln.AlarmState{}}
		for _, f := range ep.Fleets {
			obs.Fleets[f.ID] = FleetStatus{Healthy: rng.IntN(6) - 1, LaunchFailed: rng.IntN(8) == 0}
		}
		if rng.IntN(4) == 0 {
			obs.Alarms["a"] = kiln.AlarmState{StateValue: kiln.StateAlarm}
		}
		now := t0.Add(time.Duration(rng.IntN(40000)) * time.Second)
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("iteration %d: Next panicked: %v\nrecord: %+v\ndeployment: %+v", i, r, ep, ep.Deployment)
				}
			}()
			for range 50 {
				next, _, _, err := Next(ep, obs, now)
				if err != nil || next.Deployment == nil {
					return
				}
				ep = next
				now = now.Add(time.Second)
			}
		}()
	}
}

func corrupt(rng *rand.Rand, ep *kiln.Endpoint) {
	d := ep.Deployment
	pickFleet := func() *kiln.Fleet {
		if len(ep.Fleets) == 0 {
			return nil
		}
		return &ep.Fleets[rng.IntN(len(ep.Fleets))]
	}
	switch rng.IntN(16) {
	case 0:
		if f := pickFleet(); f != nil {
			f.InstanceCount = rng.IntN(8) - 2
		}
	case 1:
		if f := pickFleet(); f != nil {
			f.ActiveInstanceCount = rng.IntN(8) - 2
		}
	case 2:
		if f := pickFleet(); f != nil {
			f.TrafficShare = rng.Float64()*3 - 1
		}
	case 3:
		if len(ep.Fleets) > 0 {
			i := rng.IntN(len(ep.Fleets))
			ep.Fleets = append(ep.Fleets[:i:i], ep.Fleets[i+1:]...)
		}
	case 4:
		if d != nil {
			d.Step = rng.IntN(20) - 3
		}
	case 5:
		if d != nil {
			d.Phase = []string{"", kiln.PhaseProvisioning, kiln.PhaseActivatingTraffic, kiln.PhaseBaking, kiln.PhaseRetiring, kiln.PhaseTerminating, kiln.PhaseRollingBack, "Nonsense"}[rng.IntN(8)]
		}
	case 6:
		if d != nil {
			d.Kind = []string{kiln.DeployCreate, kiln.DeployBlueGreen, kiln.DeployRolling, kiln.DeployWeights, "X"}[rng.IntN(5)]
		}
	case 7:
		if d != nil && len(d.Target) > 0 {
			d.Target[rng.IntN(len(d.Target))].DesiredInstanceCount = rng.IntN(6) - 1
		}
	case 8:
		if d != nil && len(d.Previous) > 0 {
			d.Previous[rng.IntN(len(d.Previous))].CurrentInstanceCount = rng.IntN(6) - 1
		}
	case 9:
		if d != nil {
			d.Target, d.Previous = d.Previous, d.Target
		}
	case 10:
		if d != nil {
			d.Blue, d.Green = d.Green, d.Blue
		}
	case 11:
		if d != nil {
			d.DeploymentConfig = nil
		}
	case 12:
		if f := pickFleet(); f != nil {
			f.VariantName = fmt.Sprint("v", rng.IntN(3))
		}
	case 13:
		if d != nil {
			d.Green = append(d.Green, d.Blue...)
		}
	case 14:
		ep.ProductionVariants = nil
	case 15:
		if d != nil {
			d.StopRequested = true
			d.PhaseStartTime = time.Time{}
		}
	}
}

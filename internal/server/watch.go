package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/fleet"
	"github.com/kiln-serve/kiln/internal/gateway"
	"github.com/kiln-serve/kiln/internal/service"
	"github.com/kiln-serve/kiln/internal/store"
)

// loadEndpoints reads every endpoint and applies them; it returns the
// revision read at.
func (s *Server) loadEndpoints(ctx context.Context) (int64, error) {
	kvs, rev, err := s.st.List(ctx, service.EndpointsPrefix)
	if err != nil {
		return 0, fmt.Errorf("load endpoints: %w", err)
	}
	eps := map[string]kiln.Endpoint{}
	for _, kv := range kvs {
		// One bad record is set aside (see service.Records.ReadEndpoint); the others run.
		if ep, ok := s.records.ReadEndpoint(ctx, kv, true); ok {
			eps[ep.EndpointName] = ep
		}
	}
	s.mu.Lock()
	s.endpoints = eps
	s.mu.Unlock()
	s.apply()
	for name := range eps {
		s.ctrl.Notify(name)
	}
	return rev, nil
}

// watchEndpoints follows endpoint changes from rev on; when the watch ends
// early (compaction, a slow reader) it lists again and carries on.
func (s *Server) watchEndpoints(ctx context.Context, rev int64) error {
	for {
		ch, err := s.st.Watch(ctx, service.EndpointsPrefix, rev)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("endpoint watch failed; reloading", "err", err)
			if rev, err = s.loadEndpoints(ctx); err != nil {
				return err
			}
			rev++
			continue
		}
		for ev := range ch {
			rev = ev.KV.ModRevision + 1
			name := strings.TrimPrefix(ev.KV.Key, service.EndpointsPrefix)
			var ep kiln.Endpoint
			ok := false
			if ev.Type != store.Delete {
				// Outside the lock: marking an invalid record writes it.
				ep, ok = s.records.ReadEndpoint(ctx, ev.KV, true)
			}
			s.mu.Lock()
			before := deploymentID(s.endpoints[name])
			if ok {
				s.endpoints[name] = ep
			} else {
				// Deleted, or invalid: an invalid record runs nothing, and
				// its instances stop.
				delete(s.endpoints, name)
			}
			after := deploymentID(s.endpoints[name])
			s.mu.Unlock()
			// Routing first: a rollback's share swap must reach the gateway
			// before anything else happens.
			s.apply()
			if before != after {
				// A deployment started or ended: judge the next one on its
				// own requests, and let no verdict about the last one stand.
				s.judges.Reset(name)
				for _, a := range s.judges.Alarms(name) {
					s.alarms.EvaluateNow(ctx, a) // a deleted alarm: nothing to do
				}
			}
			s.ctrl.Notify(name)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (s *Server) loadAlarms(ctx context.Context) (int64, error) {
	kvs, rev, err := s.st.List(ctx, service.AlarmsPrefix)
	if err != nil {
		return 0, fmt.Errorf("load alarms: %w", err)
	}
	// A record that does not decode is skipped; an invalid alarm is set
	// aside by the engine.
	s.alarms.Reload(service.DecodeEach[kiln.Alarm](s.log, kvs))
	return rev, nil
}

func (s *Server) watchAlarms(ctx context.Context, rev int64) error {
	for {
		ch, err := s.st.Watch(ctx, service.AlarmsPrefix, rev)
		if err == nil {
			for ev := range ch {
				rev = ev.KV.ModRevision + 1
				// One alarm at a time: every state change writes its
				// alarm's record, and reloading every alarm on each made
				// thousands of alarms cost a core.
				name := strings.TrimPrefix(ev.KV.Key, service.AlarmsPrefix)
				if ev.Type == store.Delete {
					s.alarms.Remove(name)
					continue
				}
				if as := service.DecodeEach[kiln.Alarm](s.log, []store.KV{ev.KV}); len(as) == 1 && as[0].AlarmName == name {
					s.alarms.Put(as[0])
				} else {
					s.alarms.Remove(name)
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if rev, err = s.loadAlarms(ctx); err != nil {
			return err
		}
		rev++
	}
}

// fleetChanged is the fleet manager's OnChange: an instance became routable
// or stopped being so.
func (s *Server) fleetChanged() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// routeLoop re-applies routing when instances change, and wakes the
// controller, which waits on instance health.
func (s *Server) routeLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
			s.apply()
			s.ctrl.Notify("")
		}
	}
}

// apply makes the fleet manager and the gateway follow the endpoints as
// last read from the store.
func (s *Server) apply() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var specs []fleet.Spec
	for name, ep := range s.endpoints {
		for _, f := range ep.Fleets {
			specs = append(specs, fleet.Spec{Endpoint: name, Fleet: f})
		}
	}
	s.fleet.Sync(specs)

	routable := map[string][]fleet.Instance{} // by endpoint/fleet
	for _, in := range s.fleet.Instances() {
		if in.Routable {
			k := in.Endpoint + "/" + in.FleetID
			routable[k] = append(routable[k], in)
		}
	}
	live := map[string]bool{}
	routes := make([]gateway.EndpointRoute, 0, len(s.endpoints))
	for name, ep := range s.endpoints {
		er := gateway.EndpointRoute{Name: name}
		green := map[string]bool{} // the fleets a deployment brings in
		if d := ep.Deployment; d != nil && (d.Kind == kiln.DeployBlueGreen || d.Kind == kiln.DeployRolling) {
			for _, id := range d.Green {
				green[id] = true
			}
		}
		for _, v := range ep.ProductionVariants {
			vr := gateway.VariantRoute{Name: v.VariantName, Weight: v.CurrentWeight}
			fleets := ep.FleetsOf(v.VariantName)
			ins := make([][]gateway.InstanceRoute, len(fleets))
			// The new fleets' share of the variant as the gateway routes
			// it: shares are renormalised over fleets with an instance.
			total, newShare := 0.0, 0.0
			for i, f := range fleets {
				for _, in := range routable[name+"/"+f.ID] {
					// A canary activates the lowest-numbered instances only.
					if in.Ordinal < f.ActiveInstanceCount {
						ins[i] = append(ins[i], gateway.InstanceRoute{ID: in.ID, Addr: in.Addr})
					}
				}
				if len(ins[i]) > 0 {
					total += f.TrafficShare
					if green[f.ID] {
						newShare += f.TrafficShare
					}
				}
			}
			share := 0.0
			if total > 0 {
				share = newShare / total
			}
			for i, f := range fleets {
				key := name + "/" + v.VariantName + "/" + f.EndpointConfigName
				live[key] = true
				vr.Fleets = append(vr.Fleets, gateway.FleetRoute{
					ID: f.ID, Config: f.EndpointConfigName, Share: f.TrafficShare, Instances: ins[i],
					Recorder: &fleetRecorder{
						metrics: s.recorder(key, name, v.VariantName, f.EndpointConfigName),
						judge:   s.judges.Recorder(name, f.ID, green[f.ID]),
						share:   share,
					},
				})
			}
			er.Variants = append(er.Variants, vr)
		}
		routes = append(routes, er)
	}
	for key, r := range s.recorders {
		if !live[key] {
			s.metrics.Forget(r.endpoint, r.variant, r.config)
			delete(s.recorders, key)
		}
	}
	s.gw.Update(routes)
}

// recorder returns the metrics recorder of one fleet; call with s.mu held.
func (s *Server) recorder(key, endpoint, variant, config string) *seriesRecorder {
	r, ok := s.recorders[key]
	if !ok {
		r = &seriesRecorder{series: s.metrics.Series(endpoint, variant, config), endpoint: endpoint, variant: variant, config: config}
		s.recorders[key] = r
	}
	return r
}

func (s *Server) instancesOf(endpoint string) []kiln.InstanceInfo {
	s.mu.Lock()
	ep := s.endpoints[endpoint]
	s.mu.Unlock()
	fleets := map[string]kiln.Fleet{}
	for _, f := range ep.Fleets {
		fleets[f.ID] = f
	}
	var out []kiln.InstanceInfo
	for _, in := range s.fleet.Instances() {
		if in.Endpoint != endpoint {
			continue
		}
		f := fleets[in.FleetID]
		out = append(out, kiln.InstanceInfo{
			ID: in.ID, FleetID: in.FleetID, VariantName: f.VariantName, EndpointConfigName: f.EndpointConfigName,
			Ordinal: in.Ordinal, Addr: in.Addr, PID: in.PID, State: in.State, Routable: in.Routable,
			Restarts: in.Restarts, StartedAt: in.StartedAt, LastError: in.LastError,
		})
	}
	return out
}

// deploymentID is the ID of an endpoint's deployment in progress, or "".
func deploymentID(ep kiln.Endpoint) string {
	if ep.Deployment == nil {
		return ""
	}
	return ep.Deployment.ID
}

package server

import (
	"context"
	"fmt"
	"sort"
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

	var healthy []gateway.HealthyInstance
	for _, in := range s.fleet.Instances() {
		if in.Routable {
			healthy = append(healthy, gateway.HealthyInstance{Endpoint: in.Endpoint, FleetID: in.FleetID, ID: in.ID, Addr: in.Addr, Ordinal: in.Ordinal})
		}
	}
	eps := make([]kiln.Endpoint, 0, len(s.endpoints))
	for _, ep := range s.endpoints {
		eps = append(eps, ep)
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].EndpointName < eps[j].EndpointName })
	routes := gateway.Routes(eps, healthy)
	live := map[string]bool{}
	for _, er := range routes {
		for _, vr := range er.Variants {
			for i, fr := range vr.Fleets {
				key := er.Name + "/" + vr.Name + "/" + fr.Config
				live[key] = true
				vr.Fleets[i].Recorder = &fleetRecorder{
					metrics: s.recorder(key, er.Name, vr.Name, fr.Config),
					judge:   s.judges.Recorder(er.Name, fr.ID, fr.Green),
					share:   vr.GreenShare,
				}
			}
		}
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

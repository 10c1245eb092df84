package service

import (
	"context"
	"errors"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/deploy"
	"github.com/kiln-serve/kiln/internal/store"
)

func (s *Service) CreateEndpoint(ctx context.Context, in kiln.CreateEndpointInput) (*kiln.Endpoint, error) {
	if err := kiln.ValidateName("EndpointName", in.EndpointName); err != nil {
		return nil, err
	}
	if err := kiln.ValidateName("EndpointConfigName", in.EndpointConfigName); err != nil {
		return nil, err
	}
	if err := in.DeploymentConfig.Validate(); err != nil {
		return nil, err
	}
	arn := s.arn("endpoint", in.EndpointName)
	if _, _, err := s.getEndpoint(ctx, in.EndpointName); err == nil {
		return nil, kiln.Errorf(kiln.ECONFLICT, "Cannot create already existing endpoint %q.", arn)
	}
	cfg, err := s.GetEndpointConfig(ctx, in.EndpointConfigName)
	if err != nil {
		return nil, err
	}
	models, err := s.modelsOf(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ep, err := deploy.StartCreate(in, *cfg, models, arn, s.clk.Now().UTC())
	if err != nil {
		return nil, err
	}
	if err := s.checkSize("endpoint", encodedSize(ep)); err != nil {
		return nil, err
	}
	if err := s.checkCount(ctx, endpointsPrefix, ep.EndpointName, s.quotas.Endpoints, "endpoints", "endpoints"); err != nil {
		return nil, err
	}
	if _, err := putJSON(ctx, s.st, endpointsPrefix+ep.EndpointName, ep, 0); errors.Is(err, store.ErrConflict) {
		return nil, kiln.Errorf(kiln.ECONFLICT, "Cannot create already existing endpoint %q.", arn)
	} else if err != nil {
		return nil, err
	}
	s.notify(ep.EndpointName)
	return &ep, nil
}

// changeEndpoint applies f to the endpoint with compare-and-swap, retrying
// when the controller wrote the record in between.
func (s *Service) changeEndpoint(ctx context.Context, name string, f func(kiln.Endpoint) (kiln.Endpoint, error)) (*kiln.Endpoint, error) {
	for attempt := 0; ; attempt++ {
		ep, rev, err := s.getEndpoint(ctx, name)
		if err != nil {
			return nil, err
		}
		next, err := f(ep)
		if err != nil {
			return nil, err
		}
		_, err = putJSON(ctx, s.st, endpointsPrefix+name, next, rev)
		if errors.Is(err, store.ErrConflict) && attempt < 20 {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.notify(name)
		return &next, nil
	}
}

func (s *Service) UpdateEndpoint(ctx context.Context, in kiln.UpdateEndpointInput) (*kiln.Endpoint, error) {
	if err := kiln.ValidateName("EndpointName", in.EndpointName); err != nil {
		return nil, err
	}
	if err := kiln.ValidateName("EndpointConfigName", in.EndpointConfigName); err != nil {
		return nil, err
	}
	if err := in.DeploymentConfig.Validate(); err != nil {
		return nil, err
	}
	cfg, err := s.GetEndpointConfig(ctx, in.EndpointConfigName)
	if err != nil {
		return nil, err
	}
	models, err := s.modelsOf(ctx, cfg)
	if err != nil {
		return nil, err
	}
	alarms, err := s.rec.Alarms(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, a := range alarms {
		known[a.AlarmName] = true
	}
	if _, _, err := s.getEndpoint(ctx, in.EndpointName); err != nil {
		return nil, err
	}
	return s.changeEndpoint(ctx, in.EndpointName, func(ep kiln.Endpoint) (kiln.Endpoint, error) {
		return deploy.StartUpdate(ep, *cfg, models, in, func(n string) bool { return known[n] }, s.clk.Now().UTC())
	})
}

func (s *Service) UpdateEndpointWeightsAndCapacities(ctx context.Context, in kiln.UpdateWeightsInput) (*kiln.Endpoint, error) {
	if err := kiln.ValidateName("EndpointName", in.EndpointName); err != nil {
		return nil, err
	}
	return s.changeEndpoint(ctx, in.EndpointName, func(ep kiln.Endpoint) (kiln.Endpoint, error) {
		return deploy.StartWeights(ep, in.DesiredWeightsAndCapacities, s.clk.Now().UTC())
	})
}

func (s *Service) StopDeployment(ctx context.Context, name string) (*kiln.Endpoint, error) {
	return s.changeEndpoint(ctx, name, func(ep kiln.Endpoint) (kiln.Endpoint, error) {
		return deploy.RequestStop(ep, "stopped by operator", s.clk.Now().UTC())
	})
}

func (s *Service) RollbackEndpoint(ctx context.Context, name string) (*kiln.Endpoint, error) {
	return s.changeEndpoint(ctx, name, func(ep kiln.Endpoint) (kiln.Endpoint, error) {
		return deploy.RequestStop(ep, "rolled back by operator", s.clk.Now().UTC())
	})
}

package sagemaker

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/kiln-serve/kiln"
)

// memService is a kiln.Service over maps for the protocol's unit tests: it
// validates with the domain's rules and keeps records, but runs nothing.
// The end-to-end tests run the real one.
type memService struct {
	kiln.Service // the operations the SageMaker API does not call

	mu      sync.Mutex
	now     time.Time
	models  map[string]kiln.Model
	configs map[string]kiln.EndpointConfig
	eps     map[string]kiln.Endpoint
	// failWith, if set, is returned by every call: a way to test errors
	// the protocol layer cannot cause itself.
	failWith error
}

func newMemService() *memService {
	return &memService{
		now:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		models:  map[string]kiln.Model{},
		configs: map[string]kiln.EndpointConfig{},
		eps:     map[string]kiln.Endpoint{},
	}
}

const testRegion, testAccount = "us-east-1", "000000000000"

func (s *memService) tick() time.Time {
	s.now = s.now.Add(time.Second)
	return s.now
}

func (s *memService) CreateModel(ctx context.Context, m *kiln.Model) (*kiln.Model, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failWith != nil {
		return nil, s.failWith
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	m.ModelArn = kiln.ARN(testRegion, testAccount, "model", m.ModelName)
	if _, ok := s.models[m.ModelName]; ok {
		return nil, kiln.Errorf(kiln.ECONFLICT, "Cannot create already existing model %q.", m.ModelArn)
	}
	m.CreationTime = s.tick()
	s.models[m.ModelName] = *m
	return m, nil
}

func (s *memService) GetModel(ctx context.Context, name string) (*kiln.Model, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.models[name]
	if !ok {
		return nil, kiln.Errorf(kiln.ENOTFOUND, "Could not find model %q.", name)
	}
	return &m, nil
}

func (s *memService) ListModels(ctx context.Context) ([]kiln.Model, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failWith != nil {
		return nil, s.failWith
	}
	out := []kiln.Model{}
	for _, m := range s.models {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ModelName < out[j].ModelName })
	return out, nil
}

func (s *memService) DeleteModel(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.models[name]; !ok {
		return kiln.Errorf(kiln.ENOTFOUND, "Could not find model %q.", name)
	}
	delete(s.models, name)
	return nil
}

func (s *memService) CreateEndpointConfig(ctx context.Context, c *kiln.EndpointConfig) (*kiln.EndpointConfig, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	for _, v := range c.ProductionVariants {
		if _, ok := s.models[v.ModelName]; !ok {
			return nil, kiln.Errorf(kiln.ENOTFOUND, "Could not find model %q.", v.ModelName)
		}
	}
	c.EndpointConfigArn = kiln.ARN(testRegion, testAccount, "endpoint-config", c.EndpointConfigName)
	if _, ok := s.configs[c.EndpointConfigName]; ok {
		return nil, kiln.Errorf(kiln.ECONFLICT, "Cannot create already existing endpoint configuration %q.", c.EndpointConfigArn)
	}
	c.CreationTime = s.tick()
	s.configs[c.EndpointConfigName] = *c
	return c, nil
}

func (s *memService) GetEndpointConfig(ctx context.Context, name string) (*kiln.EndpointConfig, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.configs[name]
	if !ok {
		return nil, kiln.Errorf(kiln.ENOTFOUND, "Could not find endpoint configuration %q.", name)
	}
	return &c, nil
}

func (s *memService) ListEndpointConfigs(ctx context.Context) ([]kiln.EndpointConfig, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []kiln.EndpointConfig{}
	for _, c := range s.configs {
		out = append(out, c)
	}
	return out, nil
}

func (s *memService) DeleteEndpointConfig(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.configs[name]; !ok {
		return kiln.Errorf(kiln.ENOTFOUND, "Could not find endpoint configuration %q.", name)
	}
	delete(s.configs, name)
	return nil
}

func (s *memService) variants(c kiln.EndpointConfig) []kiln.VariantSummary {
	var out []kiln.VariantSummary
	for _, v := range c.ProductionVariants {
		m := s.models[v.ModelName]
		out = append(out, kiln.VariantSummary{
			VariantName:          v.VariantName,
			DeployedImages:       []kiln.DeployedImage{{SpecifiedImage: m.PrimaryContainer.Image, ResolvedImage: m.PrimaryContainer.Image, ResolutionTime: s.now}},
			CurrentWeight:        v.Weight(),
			DesiredWeight:        v.Weight(),
			CurrentInstanceCount: v.InitialInstanceCount,
			DesiredInstanceCount: v.InitialInstanceCount,
		})
	}
	return out
}

func (s *memService) CreateEndpoint(ctx context.Context, in kiln.CreateEndpointInput) (*kiln.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := kiln.ValidateName("EndpointName", in.EndpointName); err != nil {
		return nil, err
	}
	if err := in.DeploymentConfig.Validate(); err != nil {
		return nil, err
	}
	arn := kiln.ARN(testRegion, testAccount, "endpoint", in.EndpointName)
	if _, ok := s.eps[in.EndpointName]; ok {
		return nil, kiln.Errorf(kiln.ECONFLICT, "Cannot create already existing endpoint %q.", arn)
	}
	c, ok := s.configs[in.EndpointConfigName]
	if !ok {
		return nil, kiln.Errorf(kiln.ENOTFOUND, "Could not find endpoint configuration %q.", in.EndpointConfigName)
	}
	now := s.tick()
	// A memService endpoint is in service at once; tests set other states
	// with setEndpoint.
	ep := kiln.Endpoint{
		EndpointName: in.EndpointName, EndpointArn: arn, EndpointConfigName: c.EndpointConfigName,
		EndpointStatus: kiln.StatusInService, CreationTime: now, LastModifiedTime: now,
		ProductionVariants: s.variants(c), LastDeploymentConfig: in.DeploymentConfig, Tags: in.Tags,
	}
	s.eps[in.EndpointName] = ep
	return &ep, nil
}

func (s *memService) GetEndpoint(ctx context.Context, name string) (*kiln.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.eps[name]
	if !ok {
		return nil, kiln.Errorf(kiln.ENOTFOUND, "Could not find endpoint %q.", kiln.ARN(testRegion, testAccount, "endpoint", name))
	}
	return &ep, nil
}

func (s *memService) ListEndpoints(ctx context.Context) ([]kiln.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []kiln.Endpoint{}
	for _, ep := range s.eps {
		out = append(out, ep)
	}
	return out, nil
}

func (s *memService) DeleteEndpoint(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.eps[name]; !ok {
		return kiln.Errorf(kiln.ENOTFOUND, "Could not find endpoint %q.", kiln.ARN(testRegion, testAccount, "endpoint", name))
	}
	delete(s.eps, name)
	return nil
}

// UpdateEndpoint starts a deployment that stays in progress until a test
// finishes it with setEndpoint.
func (s *memService) UpdateEndpoint(ctx context.Context, in kiln.UpdateEndpointInput) (*kiln.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := in.DeploymentConfig.Validate(); err != nil {
		return nil, err
	}
	ep, ok := s.eps[in.EndpointName]
	if !ok {
		return nil, kiln.Errorf(kiln.ENOTFOUND, "Could not find endpoint %q.", kiln.ARN(testRegion, testAccount, "endpoint", in.EndpointName))
	}
	if !ep.Live() {
		return nil, kiln.Errorf(kiln.ECONFLICT, "Cannot update in-progress endpoint %q.", ep.EndpointArn)
	}
	c, ok := s.configs[in.EndpointConfigName]
	if !ok {
		return nil, kiln.Errorf(kiln.ENOTFOUND, "Could not find endpoint configuration %q.", in.EndpointConfigName)
	}
	now := s.tick()
	target := s.variants(c)
	for i := range target {
		target[i].CurrentInstanceCount = 0
		target[i].VariantStatus = []kiln.VariantStatus{{Status: kiln.VariantCreating, StatusMessage: fmt.Sprintf("Launching %d instance(s).", target[i].DesiredInstanceCount), StartTime: now}}
	}
	ep.EndpointStatus = kiln.StatusUpdating
	ep.LastModifiedTime = now
	ep.Deployment = &kiln.Deployment{ID: "d1", Kind: kiln.DeployBlueGreen, EndpointConfigName: c.EndpointConfigName, DeploymentConfig: in.DeploymentConfig, StartTime: now, Target: target}
	for _, v := range c.ProductionVariants {
		ep.Fleets = append(ep.Fleets, kiln.Fleet{ID: "green-" + v.VariantName, VariantName: v.VariantName, EndpointConfigName: c.EndpointConfigName, ModelName: v.ModelName, InstanceType: v.InstanceType, InstanceCount: v.InitialInstanceCount})
	}
	if in.DeploymentConfig != nil {
		ep.LastDeploymentConfig = in.DeploymentConfig
	}
	s.eps[in.EndpointName] = ep
	return &ep, nil
}

func (s *memService) UpdateEndpointWeightsAndCapacities(ctx context.Context, in kiln.UpdateWeightsInput) (*kiln.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.eps[in.EndpointName]
	if !ok {
		return nil, kiln.Errorf(kiln.ENOTFOUND, "Could not find endpoint %q.", kiln.ARN(testRegion, testAccount, "endpoint", in.EndpointName))
	}
	if len(in.DesiredWeightsAndCapacities) == 0 {
		return nil, kiln.Errorf(kiln.EINVALID, "DesiredWeightsAndCapacities must have at least 1 entry.")
	}
	for _, d := range in.DesiredWeightsAndCapacities {
		found := false
		for i := range ep.ProductionVariants {
			v := &ep.ProductionVariants[i]
			if v.VariantName != d.VariantName {
				continue
			}
			found = true
			if d.DesiredWeight != nil {
				v.DesiredWeight, v.CurrentWeight = *d.DesiredWeight, *d.DesiredWeight
			}
			if d.DesiredInstanceCount != nil {
				v.DesiredInstanceCount, v.CurrentInstanceCount = *d.DesiredInstanceCount, *d.DesiredInstanceCount
			}
		}
		if !found {
			return nil, kiln.Errorf(kiln.EINVALID, "The variant(s) \"[%s]\" is/are not present in the endpoint.", d.VariantName)
		}
	}
	s.eps[in.EndpointName] = ep
	return &ep, nil
}

// setEndpoint changes an endpoint record as the controller would.
func (s *memService) setEndpoint(name string, f func(*kiln.Endpoint)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep := s.eps[name]
	f(&ep)
	s.eps[name] = ep
}

// changeTags applies f to the tags of the resource an ARN names; f nil
// only reads them.
func (s *memService) changeTags(arn string, f func([]kiln.Tag) ([]kiln.Tag, error)) ([]kiln.Tag, error) {
	kind, _, _, name, err := kiln.ParseARN(arn)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var tags *[]kiln.Tag
	switch kind {
	case kiln.KindModel:
		if m, ok := s.models[name]; ok {
			defer func() { s.models[name] = m }()
			tags = &m.Tags
		}
	case kiln.KindEndpointConfig:
		if c, ok := s.configs[name]; ok {
			defer func() { s.configs[name] = c }()
			tags = &c.Tags
		}
	case kiln.KindEndpoint:
		if e, ok := s.eps[name]; ok {
			defer func() { s.eps[name] = e }()
			tags = &e.Tags
		}
	}
	if tags == nil {
		return nil, kiln.Errorf(kiln.ENOTFOUND, "%s", kiln.ResourceNotFound(arn))
	}
	if f == nil {
		return *tags, nil
	}
	next, err := f(*tags)
	if err != nil {
		return nil, err
	}
	*tags = next
	return next, nil
}

func (s *memService) ListTags(_ context.Context, arn string) ([]kiln.Tag, error) {
	return s.changeTags(arn, nil)
}

func (s *memService) AddTags(_ context.Context, arn string, tags []kiln.Tag) ([]kiln.Tag, error) {
	return s.changeTags(arn, func(old []kiln.Tag) ([]kiln.Tag, error) { return kiln.AddTags(old, tags) })
}

func (s *memService) DeleteTags(_ context.Context, arn string, keys []string) error {
	_, err := s.changeTags(arn, func(old []kiln.Tag) ([]kiln.Tag, error) { return kiln.RemoveTags(old, keys) })
	return err
}

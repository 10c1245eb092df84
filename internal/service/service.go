package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
	"github.com/kiln-serve/kiln/internal/store"
)

// Service implements kiln.Service on the store. It validates, then writes
// records; the controller, fleet manager, gateway and alarm engine react to
// the writes.
type Service struct {
	rec             *Records
	st              store.Store
	metrics         Metrics
	fleet           Fleet
	ctrl            Controller
	alarms          AlarmStates
	clk             clock.Clock
	quotas          Quotas
	region, account string
}

var _ kiln.Service = (*Service)(nil)

// Options is everything a Service needs; it gets all of it at construction.
type Options struct {
	// Records are the store's records, shared with the parts that write
	// them on their own (the controller, the alarm engine). Required.
	Records *Records
	// Metrics answers metric queries and keeps what clients publish. If
	// nil, queries answer nothing and PutMetricData is refused.
	Metrics Metrics
	// Fleet tells which instances run. If nil, none run.
	Fleet Fleet
	// Controller is woken when an endpoint changes. If nil, no one is.
	Controller Controller
	// Alarms is told of a state an operator set. If nil, no one is.
	Alarms AlarmStates
	// Quotas bound what clients can make Kiln store; if nil, DefaultQuotas.
	Quotas *Quotas
	// Region and Account appear in ARNs; defaults us-east-1, 000000000000.
	Region, Account string
	// Clock defaults to the wall clock.
	Clock clock.Clock
}

// Metrics is what the service needs of the metrics stores: Kiln's own
// (AWS/SageMaker's namespace) and the ones clients publish.
type Metrics interface {
	// Query answers a query whose Period was checked.
	Query(q kiln.MetricQuery) ([]kiln.Datapoint, error)
	// List lists the metrics that match; empty arguments match any.
	List(namespace, metricName string, dims []kiln.Dimension) []kiln.Metric
	// Put keeps data that kiln.ValidateMetricData passed.
	Put(namespace string, data []kiln.MetricDatum) error
}

// Fleet is what the service needs of the running instances.
type Fleet interface {
	// Instances lists an endpoint's instances, in any order.
	Instances(endpoint string) []kiln.InstanceInfo
	// LogFiles lists the paths of an endpoint's instance logs.
	LogFiles(endpoint string) []string
	// CheckImage refuses an Image the fleet would not run.
	CheckImage(image string) error
}

// Controller is the deployment controller, woken when an endpoint changes.
type Controller interface {
	Notify(endpoint string)
}

// AlarmStates is the alarm engine, told of a state an operator set so that
// it evaluates from there.
type AlarmStates interface {
	SetState(name string, st kiln.AlarmState)
}

// New returns a Service over opts.Records.
func New(opts Options) *Service {
	if opts.Records == nil {
		panic("service.New: Options.Records is required")
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Account == "" {
		opts.Account = "000000000000"
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	return &Service{
		rec: opts.Records, st: opts.Records.st, metrics: opts.Metrics, fleet: opts.Fleet,
		ctrl: opts.Controller, alarms: opts.Alarms, clk: opts.Clock,
		quotas: quotasOrDefault(opts.Quotas), region: opts.Region, account: opts.Account,
	}
}

// notify wakes the controller for an endpoint.
func (s *Service) notify(endpoint string) {
	if s.ctrl != nil {
		s.ctrl.Notify(endpoint)
	}
}

func (s *Service) arn(resource, name string) string {
	return kiln.ARN(s.region, s.account, resource, name)
}

// ---- models

func (s *Service) CreateModel(ctx context.Context, m *kiln.Model) (*kiln.Model, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if s.fleet != nil {
		if err := s.fleet.CheckImage(m.PrimaryContainer.Image); err != nil {
			return nil, err
		}
	}
	m.ModelArn = s.arn("model", m.ModelName)
	m.CreationTime = s.clk.Now().UTC()
	if err := s.checkSize("model", encodedSize(m)); err != nil {
		return nil, err
	}
	if err := s.checkCount(ctx, modelsPrefix, m.ModelName, s.quotas.Models, "models", "models"); err != nil {
		return nil, err
	}
	_, err := putJSON(ctx, s.st, modelsPrefix+m.ModelName, m, 0)
	if errors.Is(err, store.ErrConflict) {
		return nil, kiln.Errorf(kiln.ECONFLICT, "Cannot create already existing model %q.", m.ModelArn)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (s *Service) GetModel(ctx context.Context, name string) (*kiln.Model, error) {
	m, _, err := getJSON[kiln.Model](ctx, s.st, modelsPrefix+name, fmt.Sprintf("Could not find model %q.", name))
	return &m, err
}

func (s *Service) ListModels(ctx context.Context) ([]kiln.Model, error) {
	return listJSON[kiln.Model](ctx, s.st, modelsPrefix)
}

func (s *Service) DeleteModel(ctx context.Context, name string) error {
	return s.delete(ctx, modelsPrefix+name, fmt.Sprintf("Could not find model %q.", name))
}

func (s *Service) delete(ctx context.Context, key, notFound string) error {
	_, err := s.st.Delete(ctx, key, store.Any)
	if errors.Is(err, store.ErrNotFound) {
		return kiln.Errorf(kiln.ENOTFOUND, "%s", notFound)
	}
	return err
}

// ---- endpoint configs

func (s *Service) CreateEndpointConfig(ctx context.Context, c *kiln.EndpointConfig) (*kiln.EndpointConfig, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	for _, v := range c.ProductionVariants {
		if _, err := s.GetModel(ctx, v.ModelName); err != nil {
			return nil, err
		}
	}
	c.EndpointConfigArn = s.arn("endpoint-config", c.EndpointConfigName)
	c.CreationTime = s.clk.Now().UTC()
	if err := s.checkSize("endpoint configuration", encodedSize(c)); err != nil {
		return nil, err
	}
	if err := s.checkCount(ctx, configsPrefix, c.EndpointConfigName, s.quotas.EndpointConfigs, "endpoint configurations", "endpoint-configs"); err != nil {
		return nil, err
	}
	_, err := putJSON(ctx, s.st, configsPrefix+c.EndpointConfigName, c, 0)
	if errors.Is(err, store.ErrConflict) {
		return nil, kiln.Errorf(kiln.ECONFLICT, "Cannot create already existing endpoint configuration %q.", c.EndpointConfigArn)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *Service) GetEndpointConfig(ctx context.Context, name string) (*kiln.EndpointConfig, error) {
	c, _, err := getJSON[kiln.EndpointConfig](ctx, s.st, configsPrefix+name, fmt.Sprintf("Could not find endpoint configuration %q.", name))
	return &c, err
}

func (s *Service) ListEndpointConfigs(ctx context.Context) ([]kiln.EndpointConfig, error) {
	return listJSON[kiln.EndpointConfig](ctx, s.st, configsPrefix)
}

func (s *Service) DeleteEndpointConfig(ctx context.Context, name string) error {
	return s.delete(ctx, configsPrefix+name, fmt.Sprintf("Could not find endpoint configuration %q.", name))
}

// modelsOf loads the models a config names.
func (s *Service) modelsOf(ctx context.Context, c *kiln.EndpointConfig) (map[string]kiln.Model, error) {
	models := map[string]kiln.Model{}
	for _, v := range c.ProductionVariants {
		m, err := s.GetModel(ctx, v.ModelName)
		if err != nil {
			return nil, err
		}
		models[v.ModelName] = *m
	}
	return models, nil
}

// ---- endpoints

func (s *Service) endpointNotFound(name string) string {
	return fmt.Sprintf("Could not find endpoint %q.", s.arn("endpoint", name))
}

func (s *Service) getEndpoint(ctx context.Context, name string) (kiln.Endpoint, int64, error) {
	return getJSON[kiln.Endpoint](ctx, s.st, endpointsPrefix+name, s.endpointNotFound(name))
}

func (s *Service) GetEndpoint(ctx context.Context, name string) (*kiln.Endpoint, error) {
	ep, _, err := s.getEndpoint(ctx, name)
	return &ep, err
}

func (s *Service) ListEndpoints(ctx context.Context) ([]kiln.Endpoint, error) {
	return listJSON[kiln.Endpoint](ctx, s.st, endpointsPrefix)
}

func (s *Service) DeleteEndpoint(ctx context.Context, name string) error {
	if err := s.delete(ctx, endpointsPrefix+name, s.endpointNotFound(name)); err != nil {
		return err
	}
	// The history goes with the endpoint; a new endpoint of the same name
	// starts afresh.
	kvs, _, err := s.st.List(ctx, historyPrefix+name+"/")
	if err != nil {
		return fmt.Errorf("list history of %s: %w", name, err)
	}
	for _, kv := range kvs {
		if _, err := s.st.Delete(ctx, kv.Key, store.Any); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete history of %s: %w", name, err)
		}
	}
	s.notify(name)
	return nil
}

func (s *Service) EndpointHistory(ctx context.Context, name string) ([]kiln.HistoryEvent, error) {
	if _, _, err := s.getEndpoint(ctx, name); err != nil {
		return nil, err
	}
	return listJSON[kiln.HistoryEvent](ctx, s.st, historyPrefix+name+"/")
}

func (s *Service) EndpointInstances(ctx context.Context, name string) ([]kiln.InstanceInfo, error) {
	if _, _, err := s.getEndpoint(ctx, name); err != nil {
		return nil, err
	}
	var out []kiln.InstanceInfo
	if s.fleet != nil {
		out = s.fleet.Instances(name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *Service) EndpointLogs(ctx context.Context, name string, tail int) (string, error) {
	if _, _, err := s.getEndpoint(ctx, name); err != nil {
		return "", err
	}
	if s.fleet == nil {
		return "", nil
	}
	var b strings.Builder
	for _, path := range s.fleet.LogFiles(name) {
		data, err := readTail(path, tail)
		if err != nil {
			continue // an instance's log may be rotated away under us
		}
		fmt.Fprintf(&b, "==> %s <==\n%s", baseName(path), data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// readTail returns at most the last n bytes of a file.
func readTail(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := fi.Size() - int64(n)
	if off < 0 {
		off = 0
	}
	buf := make([]byte, fi.Size()-off)
	_, err = f.ReadAt(buf, off)
	return buf, err
}

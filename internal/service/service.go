package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/clock"
	"github.com/kiln-serve/kiln/internal/metrics"
	"github.com/kiln-serve/kiln/internal/store"
)

// service implements kiln.Service on the store. It validates, then writes
// records; the controller, fleet manager, gateway and alarm engine react to
// the writes.
type service struct {
	st              store.Store
	metrics         *metrics.Store
	custom          *metrics.Custom // what clients publish with PutMetricData
	clk             clock.Clock
	log             *slog.Logger // if nil, nothing is logged
	quotas          Quotas
	region, account string
	// hooks into the running parts; set by the server.
	instances func(endpoint string) []kiln.InstanceInfo
	logFiles  func(endpoint string) []string
	setState  func(name string, st kiln.AlarmState)
	notify    func(endpoint string)
	seq       atomic.Uint64 // orders history entries written in the same instant

	// checkImage refuses an Image the fleet would not run; nil checks nothing.
	checkImage func(image string) error
}

var _ kiln.Service = (*service)(nil)

func (s *service) arn(resource, name string) string {
	return kiln.ARN(s.region, s.account, resource, name)
}

// ---- models

func (s *service) CreateModel(ctx context.Context, m *kiln.Model) (*kiln.Model, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if s.checkImage != nil {
		if err := s.checkImage(m.PrimaryContainer.Image); err != nil {
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

func (s *service) GetModel(ctx context.Context, name string) (*kiln.Model, error) {
	m, _, err := getJSON[kiln.Model](ctx, s.st, modelsPrefix+name, fmt.Sprintf("Could not find model %q.", name))
	return &m, err
}

func (s *service) ListModels(ctx context.Context) ([]kiln.Model, error) {
	return listJSON[kiln.Model](ctx, s.st, modelsPrefix)
}

func (s *service) DeleteModel(ctx context.Context, name string) error {
	return s.delete(ctx, modelsPrefix+name, fmt.Sprintf("Could not find model %q.", name))
}

func (s *service) delete(ctx context.Context, key, notFound string) error {
	_, err := s.st.Delete(ctx, key, store.Any)
	if errors.Is(err, store.ErrNotFound) {
		return kiln.Errorf(kiln.ENOTFOUND, "%s", notFound)
	}
	return err
}

// ---- endpoint configs

func (s *service) CreateEndpointConfig(ctx context.Context, c *kiln.EndpointConfig) (*kiln.EndpointConfig, error) {
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

func (s *service) GetEndpointConfig(ctx context.Context, name string) (*kiln.EndpointConfig, error) {
	c, _, err := getJSON[kiln.EndpointConfig](ctx, s.st, configsPrefix+name, fmt.Sprintf("Could not find endpoint configuration %q.", name))
	return &c, err
}

func (s *service) ListEndpointConfigs(ctx context.Context) ([]kiln.EndpointConfig, error) {
	return listJSON[kiln.EndpointConfig](ctx, s.st, configsPrefix)
}

func (s *service) DeleteEndpointConfig(ctx context.Context, name string) error {
	return s.delete(ctx, configsPrefix+name, fmt.Sprintf("Could not find endpoint configuration %q.", name))
}

// modelsOf loads the models a config names.
func (s *service) modelsOf(ctx context.Context, c *kiln.EndpointConfig) (map[string]kiln.Model, error) {
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

func (s *service) endpointNotFound(name string) string {
	return fmt.Sprintf("Could not find endpoint %q.", s.arn("endpoint", name))
}

func (s *service) getEndpoint(ctx context.Context, name string) (kiln.Endpoint, int64, error) {
	return getJSON[kiln.Endpoint](ctx, s.st, endpointsPrefix+name, s.endpointNotFound(name))
}

func (s *service) GetEndpoint(ctx context.Context, name string) (*kiln.Endpoint, error) {
	ep, _, err := s.getEndpoint(ctx, name)
	return &ep, err
}

func (s *service) ListEndpoints(ctx context.Context) ([]kiln.Endpoint, error) {
	return listJSON[kiln.Endpoint](ctx, s.st, endpointsPrefix)
}

func (s *service) DeleteEndpoint(ctx context.Context, name string) error {
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

func (s *service) EndpointHistory(ctx context.Context, name string) ([]kiln.HistoryEvent, error) {
	if _, _, err := s.getEndpoint(ctx, name); err != nil {
		return nil, err
	}
	return listJSON[kiln.HistoryEvent](ctx, s.st, historyPrefix+name+"/")
}

func (s *service) EndpointInstances(ctx context.Context, name string) ([]kiln.InstanceInfo, error) {
	if _, _, err := s.getEndpoint(ctx, name); err != nil {
		return nil, err
	}
	out := s.instances(name)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *service) EndpointLogs(ctx context.Context, name string, tail int) (string, error) {
	if _, _, err := s.getEndpoint(ctx, name); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, path := range s.logFiles(name) {
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

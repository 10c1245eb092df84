package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/store"
)

// Lists a page at a time (kiln.Lister): the names come from the store's
// keys, which it lists without reading the values, and only the records of
// the page are read and decoded.

var _ kiln.Lister = (*Service)(nil)

var kindPrefixes = map[string]string{
	kiln.KindModels:          modelsPrefix,
	kiln.KindEndpointConfigs: configsPrefix,
	kiln.KindEndpoints:       endpointsPrefix,
	kiln.KindAlarms:          alarmsPrefix,
}

func (s *Service) Names(ctx context.Context, kind string) ([]kiln.Entry, error) {
	prefix, ok := kindPrefixes[kind]
	if !ok {
		return nil, fmt.Errorf("list names: unknown kind %q", kind)
	}
	keys, _, err := s.st.Keys(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	out := make([]kiln.Entry, len(keys))
	for i, kv := range keys {
		out[i] = kiln.Entry{Name: strings.TrimPrefix(kv.Key, prefix), Order: kv.CreateRevision}
	}
	return out, nil
}

func (s *Service) ModelsNamed(ctx context.Context, names []string) ([]kiln.Model, error) {
	return getNamed[kiln.Model](ctx, s.st, modelsPrefix, names)
}

func (s *Service) EndpointConfigsNamed(ctx context.Context, names []string) ([]kiln.EndpointConfig, error) {
	return getNamed[kiln.EndpointConfig](ctx, s.st, configsPrefix, names)
}

func (s *Service) EndpointsNamed(ctx context.Context, names []string) ([]kiln.Endpoint, error) {
	return getNamed[kiln.Endpoint](ctx, s.st, endpointsPrefix, names)
}

func (s *Service) AlarmsNamed(ctx context.Context, names []string) ([]kiln.Alarm, error) {
	return getNamed[kiln.Alarm](ctx, s.st, alarmsPrefix, names)
}

// getNamed reads the records prefix+name, leaving out those that no longer
// exist and those damaged on disk (the store reports them), as List does.
func getNamed[T any](ctx context.Context, st store.Store, prefix string, names []string) ([]T, error) {
	out := make([]T, 0, len(names))
	for _, name := range names {
		kv, err := st.Get(ctx, prefix+name)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrCorruptRecord):
			continue
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", prefix+name, err)
		}
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

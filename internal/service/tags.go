package service

import (
	"context"
	"errors"
	"strings"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/store"
)

// tagged is the record an ARN names.
type tagged struct {
	kind, key, notFound string
}

// resolve finds the record an ARN names. The ARNs of models, endpoint
// configs and endpoints carry lower-cased names, so their names match
// regardless of case; a name that matches two records is refused.
func (s *Service) resolve(ctx context.Context, arn string) (tagged, error) {
	kind, region, account, name, err := kiln.ParseARN(arn)
	if err != nil {
		return tagged{}, err
	}
	notFound := kiln.ResourceNotFound(arn)
	if region != s.region || account != s.account {
		return tagged{}, kiln.Errorf(kiln.ENOTFOUND, "%s Kiln's resources are in region %s, account %s.", notFound, s.region, s.account)
	}
	prefix := map[string]string{
		kiln.KindModel: modelsPrefix, kiln.KindEndpointConfig: configsPrefix,
		kiln.KindEndpoint: endpointsPrefix, kiln.KindAlarm: alarmsPrefix,
	}[kind]
	if kind == kiln.KindAlarm {
		return tagged{kind, prefix + name, notFound}, nil
	}
	kvs, _, err := s.st.List(ctx, prefix)
	if err != nil {
		return tagged{}, err
	}
	var match []string
	for _, kv := range kvs {
		if strings.EqualFold(strings.TrimPrefix(kv.Key, prefix), name) {
			match = append(match, kv.Key)
		}
	}
	switch len(match) {
	case 0:
		return tagged{}, kiln.Errorf(kiln.ENOTFOUND, "%s", notFound)
	case 1:
		return tagged{kind, match[0], notFound}, nil
	}
	return tagged{}, kiln.Errorf(kiln.EINVALID, "ARN %q names %d resources whose names differ only in case; change their tags with Kiln's own API.", arn, len(match))
}

func (s *Service) ListTags(ctx context.Context, arn string) ([]kiln.Tag, error) {
	return s.changeTags(ctx, arn, nil)
}

func (s *Service) AddTags(ctx context.Context, arn string, tags []kiln.Tag) ([]kiln.Tag, error) {
	return s.changeTags(ctx, arn, func(old []kiln.Tag) ([]kiln.Tag, error) { return kiln.AddTags(old, tags) })
}

func (s *Service) DeleteTags(ctx context.Context, arn string, keys []string) error {
	_, err := s.changeTags(ctx, arn, func(old []kiln.Tag) ([]kiln.Tag, error) { return kiln.RemoveTags(old, keys) })
	return err
}

// changeTags applies f to the tags of the record an ARN names, with
// compare-and-swap, and returns the tags it wrote; with f nil it only
// reads them.
func (s *Service) changeTags(ctx context.Context, arn string, f func([]kiln.Tag) ([]kiln.Tag, error)) ([]kiln.Tag, error) {
	r, err := s.resolve(ctx, arn)
	if err != nil {
		return nil, err
	}
	switch r.kind {
	case kiln.KindModel:
		return changeTagsOf(ctx, s.st, r, func(m *kiln.Model) *[]kiln.Tag { return &m.Tags }, f)
	case kiln.KindEndpointConfig:
		return changeTagsOf(ctx, s.st, r, func(c *kiln.EndpointConfig) *[]kiln.Tag { return &c.Tags }, f)
	case kiln.KindEndpoint:
		return changeTagsOf(ctx, s.st, r, func(e *kiln.Endpoint) *[]kiln.Tag { return &e.Tags }, f)
	default:
		return changeTagsOf(ctx, s.st, r, func(a *kiln.Alarm) *[]kiln.Tag { return &a.Tags }, f)
	}
}

func changeTagsOf[T any](ctx context.Context, st store.Store, r tagged, tagsOf func(*T) *[]kiln.Tag, f func([]kiln.Tag) ([]kiln.Tag, error)) ([]kiln.Tag, error) {
	for attempt := 0; ; attempt++ {
		v, rev, err := getJSON[T](ctx, st, r.key, r.notFound)
		if err != nil {
			return nil, err
		}
		tags := tagsOf(&v)
		if f == nil {
			return append([]kiln.Tag{}, *tags...), nil
		}
		next, err := f(*tags)
		if err != nil {
			return nil, err
		}
		*tags = next
		// The controller and the alarm engine write these records too.
		_, err = putJSON(ctx, st, r.key, &v, rev)
		if errors.Is(err, store.ErrConflict) && attempt < 20 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return next, nil
	}
}

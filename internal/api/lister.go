package api

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-serve/kiln"
)

// ListerOf returns what pages svc's lists: svc itself if it reads them a
// page at a time, or else an adapter over its full lists.
func ListerOf(svc kiln.Service) kiln.Lister {
	if l, ok := svc.(kiln.Lister); ok {
		return l
	}
	return fullLister{svc}
}

// fullLister pages a Service's full lists: every record is read for every
// page. It serves Services without kiln.Lister (test doubles).
type fullLister struct{ svc kiln.Service }

func (f fullLister) Names(ctx context.Context, kind string) ([]kiln.Entry, error) {
	var out []kiln.Entry
	add := func(name string, order int64) { out = append(out, kiln.Entry{Name: name, Order: order}) }
	switch kind {
	case kiln.KindModels:
		l, err := f.svc.ListModels(ctx)
		if err != nil {
			return nil, err
		}
		for _, v := range l {
			add(v.ModelName, v.CreationTime.UnixNano())
		}
	case kiln.KindEndpointConfigs:
		l, err := f.svc.ListEndpointConfigs(ctx)
		if err != nil {
			return nil, err
		}
		for _, v := range l {
			add(v.EndpointConfigName, v.CreationTime.UnixNano())
		}
	case kiln.KindEndpoints:
		l, err := f.svc.ListEndpoints(ctx)
		if err != nil {
			return nil, err
		}
		for _, v := range l {
			add(v.EndpointName, v.CreationTime.UnixNano())
		}
	case kiln.KindAlarms:
		l, err := f.svc.ListAlarms(ctx)
		if err != nil {
			return nil, err
		}
		for _, v := range l {
			add(v.AlarmName, 0)
		}
	default:
		return nil, fmt.Errorf("list names: unknown kind %q", kind)
	}
	slices.SortFunc(out, func(a, b kiln.Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (f fullLister) ModelsNamed(ctx context.Context, names []string) ([]kiln.Model, error) {
	return pick(ctx, f.svc.ListModels, func(v kiln.Model) string { return v.ModelName }, names)
}

func (f fullLister) EndpointConfigsNamed(ctx context.Context, names []string) ([]kiln.EndpointConfig, error) {
	return pick(ctx, f.svc.ListEndpointConfigs, func(v kiln.EndpointConfig) string { return v.EndpointConfigName }, names)
}

func (f fullLister) EndpointsNamed(ctx context.Context, names []string) ([]kiln.Endpoint, error) {
	return pick(ctx, f.svc.ListEndpoints, func(v kiln.Endpoint) string { return v.EndpointName }, names)
}

func (f fullLister) AlarmsNamed(ctx context.Context, names []string) ([]kiln.Alarm, error) {
	return pick(ctx, f.svc.ListAlarms, func(v kiln.Alarm) string { return v.AlarmName }, names)
}

// pick returns the records of list named names, in that order.
func pick[T any](ctx context.Context, list func(context.Context) ([]T, error), name func(T) string, names []string) ([]T, error) {
	all, err := list(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]T, len(all))
	for _, v := range all {
		byName[name(v)] = v
	}
	out := make([]T, 0, len(names))
	for _, n := range names {
		if v, ok := byName[n]; ok {
			out = append(out, v)
		}
	}
	return out, nil
}

package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/store"
)

// Keys under which domain records live in the store.
const (
	modelsPrefix       = "models/"
	configsPrefix      = "endpoint-configs/"
	endpointsPrefix    = "endpoints/"
	alarmsPrefix       = "alarms/"
	historyPrefix      = "history/"       // history/<endpoint>/<revision>
	alarmHistoryPrefix = "alarm-history/" // alarm-history/<alarm>/<revision>
)

// EndpointsPrefix and AlarmsPrefix are the keys of endpoints and alarms,
// for the loops that watch them.
const (
	EndpointsPrefix = endpointsPrefix
	AlarmsPrefix    = alarmsPrefix
)

// getJSON reads a record; a missing key is an ENOTFOUND with msg.
func getJSON[T any](ctx context.Context, st store.Store, key, notFound string) (T, int64, error) {
	var v T
	kv, err := st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return v, 0, kiln.Errorf(kiln.ENOTFOUND, "%s", notFound)
	}
	if err != nil {
		return v, 0, fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return v, kv.ModRevision, nil
}

// listJSON reads every record under prefix.
func listJSON[T any](ctx context.Context, st store.Store, prefix string) ([]T, error) {
	kvs, _, err := st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	out := make([]T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// putJSON writes a record with compare-and-swap on rev.
func putJSON(ctx context.Context, st store.Store, key string, v any, rev int64) (int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", key, err)
	}
	r, err := st.Put(ctx, key, b, rev)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	return r, nil
}

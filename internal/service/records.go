package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

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

// Records reads and writes Kiln's records in the store for the parts that
// write them on their own: the deployment controller (endpoints and their
// history) and the alarm engine (alarm states). The Service writes the same
// records on a client's behalf, through the same Records.
type Records struct {
	st  store.Store
	log *slog.Logger
	seq atomic.Uint64 // orders history entries written in the same instant
}

// NewRecords returns the records in st; log, if not nil, hears of the
// records set aside.
func NewRecords(st store.Store, log *slog.Logger) *Records {
	return &Records{st: st, log: logger(log)}
}

// Endpoint reads an endpoint and the revision to write it back at; a
// missing one is an ENOTFOUND.
func (r *Records) Endpoint(ctx context.Context, name string) (kiln.Endpoint, int64, error) {
	return getJSON[kiln.Endpoint](ctx, r.st, endpointsPrefix+name, fmt.Sprintf("Could not find endpoint %q.", name))
}

// PutEndpoint writes an endpoint with compare-and-swap on rev; a lost race
// is a store.ErrConflict.
func (r *Records) PutEndpoint(ctx context.Context, ep kiln.Endpoint, rev int64) (int64, error) {
	return putJSON(ctx, r.st, endpointsPrefix+ep.EndpointName, ep, rev)
}

// AppendHistory appends events to an endpoint's history, in order.
func (r *Records) AppendHistory(ctx context.Context, endpoint string, evs []kiln.HistoryEvent) error {
	for _, ev := range evs {
		if _, err := putJSON(ctx, r.st, historyKey(&r.seq, historyPrefix, endpoint, ev.Time), ev, 0); err != nil {
			return err
		}
	}
	return nil
}

// historyKey orders entries by time, with a sequence number so that two
// entries in the same nanosecond keep their order.
func historyKey(seq *atomic.Uint64, prefix, name string, t time.Time) string {
	return fmt.Sprintf("%s%s/%020d-%08d", prefix, name, t.UnixNano(), seq.Add(1)%1e8)
}

package service

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/store"
)

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

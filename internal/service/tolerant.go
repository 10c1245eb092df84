package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/store"
)

// One bad record never stops Kiln. The loops that read every stored record
// (at start, on every watch event, in the deployment controller and the
// alarm engine) skip a record that does not decode, and log it; an endpoint
// that decodes but is invalid is marked Failed with a reason and not run;
// an invalid alarm is set aside by the alarm engine. The records stay in the
// store, for an operator to inspect and delete.

// DecodeEach decodes the records of one kind, skipping and logging those
// that do not decode.
func DecodeEach[T any](log *slog.Logger, kvs []store.KV) []T {
	out := make([]T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			logger(log).Error("stored record skipped: it does not decode", "key", kv.Key, "err", err)
			continue
		}
		out = append(out, v)
	}
	return out
}

// logger is l, or a discarding logger if l is nil.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Alarms lists every alarm that decodes: what Kiln's own loops use, where
// one bad record must not stop the others.
func (r *Records) Alarms(ctx context.Context) ([]kiln.Alarm, error) {
	kvs, _, err := r.st.List(ctx, alarmsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", alarmsPrefix, err)
	}
	return DecodeEach[kiln.Alarm](r.log, kvs), nil
}

// Endpoints lists every endpoint that decodes and is valid.
func (r *Records) Endpoints(ctx context.Context) ([]kiln.Endpoint, error) {
	kvs, _, err := r.st.List(ctx, endpointsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", endpointsPrefix, err)
	}
	out := make([]kiln.Endpoint, 0, len(kvs))
	for _, kv := range kvs {
		if ep, ok := r.ReadEndpoint(ctx, kv, false); ok {
			out = append(out, ep)
		}
	}
	return out, nil
}

// ReadEndpoint decodes and checks a stored endpoint. One that does not
// decode is logged; one that is invalid is logged and, if mark, marked
// Failed with the reason in the store (once), so that DescribeEndpoint says
// why it does not run.
func (r *Records) ReadEndpoint(ctx context.Context, kv store.KV, mark bool) (kiln.Endpoint, bool) {
	var ep kiln.Endpoint
	if err := json.Unmarshal(kv.Value, &ep); err != nil {
		r.log.Error("endpoint record skipped: it does not decode", "key", kv.Key, "err", err)
		return ep, false
	}
	err := ep.ValidateStored()
	if name := strings.TrimPrefix(kv.Key, endpointsPrefix); err == nil && ep.EndpointName != name {
		err = kiln.Errorf(kiln.EINVALID, "EndpointName %q does not match its key %q.", ep.EndpointName, kv.Key)
	}
	if err == nil {
		return ep, true
	}
	reason := "Kiln cannot run this endpoint: its stored record is invalid: " + kiln.ErrorMessage(err) + " Delete the endpoint and create it again."
	r.log.Error("endpoint not run: invalid record", "key", kv.Key, "err", err)
	if mark && (ep.EndpointStatus != kiln.StatusFailed || ep.FailureReason != reason) {
		ep.EndpointStatus, ep.FailureReason = kiln.StatusFailed, reason
		if _, err := putJSON(ctx, r.st, kv.Key, ep, kv.ModRevision); err != nil && !errors.Is(err, store.ErrConflict) {
			r.log.Warn("mark invalid endpoint failed", "key", kv.Key, "err", err)
		}
	}
	return ep, false
}

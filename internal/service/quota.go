package service

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-serve/kiln"
)

// Quotas bound what clients can make Kiln store, so that a client (or a
// script gone wrong) cannot fill the disk, the memory of a list, or the
// alarm engine's time. A limit of 0 means no limit. An operator changes
// them with `kiln serve --quota kind=N`.
type Quotas struct {
	// Models, EndpointConfigs, Endpoints and Alarms bound how many of each
	// exist at once.
	Models, EndpointConfigs, Endpoints, Alarms int
	// RecordBytes bounds the size of one record (a model, an endpoint
	// config, an endpoint or an alarm) as stored, in bytes.
	RecordBytes int
}

// DefaultQuotas are SageMaker's and CloudWatch's orders of magnitude, for
// one machine: CloudWatch's long-standing 5,000 alarms per account and
// Region; a thousand models and endpoint configs; a hundred endpoints,
// each of which runs processes; and 256 KiB per record, above the largest
// valid model (a 100-entry Environment of 1 KiB keys and values, 50 tags).
func DefaultQuotas() Quotas {
	return Quotas{Models: 1000, EndpointConfigs: 1000, Endpoints: 100, Alarms: 5000, RecordBytes: 256 << 10}
}

// quotaKinds names the quotas as --quota takes them.
var quotaKinds = map[string]func(*Quotas) *int{
	"models":           func(q *Quotas) *int { return &q.Models },
	"endpoint-configs": func(q *Quotas) *int { return &q.EndpointConfigs },
	"endpoints":        func(q *Quotas) *int { return &q.Endpoints },
	"alarms":           func(q *Quotas) *int { return &q.Alarms },
	"record-bytes":     func(q *Quotas) *int { return &q.RecordBytes },
}

// QuotaKinds lists the names --quota takes.
func QuotaKinds() []string {
	var out []string
	for k := range quotaKinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Set changes one quota from "kind=N" (N a positive number, or
// "unlimited").
func (q *Quotas) Set(s string) error {
	kind, val, ok := strings.Cut(s, "=")
	field := quotaKinds[strings.TrimSpace(kind)]
	if !ok || field == nil {
		return fmt.Errorf("--quota %q: want KIND=N with KIND one of %s", s, strings.Join(QuotaKinds(), ", "))
	}
	val = strings.TrimSpace(val)
	if val == "unlimited" {
		*field(q) = 0
		return nil
	}
	n, err := strconv.Atoi(val)
	if err != nil || n < 1 {
		return fmt.Errorf("--quota %q: want a whole number of at least 1, or unlimited", s)
	}
	*field(q) = n
	return nil
}

// checkCount refuses a new record under prefix when limit of them exist
// already. A name that exists passes, so that its creation fails as a
// conflict, as it would below the limit. Two creations racing may both
// pass: a quota is a bound on growth, not an exact count.
func (s *Service) checkCount(ctx context.Context, prefix, name string, limit int, what, kind string) error {
	if limit <= 0 {
		return nil
	}
	// Keys, not List: a count must not read every record's value.
	kvs, _, err := s.st.Keys(ctx, prefix)
	if err != nil {
		return fmt.Errorf("count %s: %w", what, err)
	}
	for _, kv := range kvs {
		if kv.Key == prefix+name {
			return nil
		}
	}
	if len(kvs) >= limit {
		return kiln.Errorf(kiln.ELIMIT, "Kiln holds %d %s, its limit; delete some, or raise the limit with kiln serve --quota %s=N.", len(kvs), what, kind)
	}
	return nil
}

// checkSize refuses a record larger than the RecordBytes quota.
func (s *Service) checkSize(what string, size int) error {
	if limit := s.quotas.RecordBytes; limit > 0 && size > limit {
		return kiln.Errorf(kiln.ELIMIT, "The %s is %d bytes as stored, above the limit of %d; raise it with kiln serve --quota record-bytes=N.", what, size, limit)
	}
	return nil
}

// encodedSize is the size of a record as putJSON stores it; a record that
// cannot be encoded counts as 0 here and fails in putJSON.
func encodedSize(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

func quotasOrDefault(q *Quotas) Quotas {
	if q == nil {
		return DefaultQuotas()
	}
	return *q
}

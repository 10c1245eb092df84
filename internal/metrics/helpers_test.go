package metrics

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kiln-serve/kiln/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newTestStore returns a Store on a fake clock set to a whole hour, so that
// period boundaries in tests fall on round numbers.
func newTestStore(testing.TB) (*Store, clock.Fake) {
	clk := clock.NewFake()
	now := clk.Now()
	clk.Advance(now.Truncate(time.Hour).Add(time.Hour).Sub(now))
	return New(clk, nil), clk
}

func us(n float64) time.Duration { return time.Duration(n * float64(time.Microsecond)) }

// mustQuery runs a query that must succeed.
func mustQuery(t *testing.T, st *Store, q Query) []Datapoint {
	t.Helper()
	if q.Period == 0 {
		q.Period = time.Second
	}
	dps, err := st.Query(q)
	if err != nil {
		t.Fatalf("Query(%+v): %v", q, err)
	}
	return dps
}

// value runs a query that must yield exactly one datapoint and returns it.
func value(t *testing.T, st *Store, q Query) Datapoint {
	t.Helper()
	dps := mustQuery(t, st, q)
	if len(dps) != 1 {
		t.Fatalf("Query(%s %s %v): got %d datapoints, want 1: %+v", q.MetricName, q.Statistic, q.Dimensions, len(dps), dps)
	}
	return dps[0]
}

func fleet(e, v, c string) map[string]string {
	return map[string]string{DimEndpoint: e, DimVariant: v, DimConfig: c}
}

func variant(e, v string) map[string]string {
	return map[string]string{DimEndpoint: e, DimVariant: v}
}

func endpoint(e string) map[string]string {
	return map[string]string{DimEndpoint: e}
}

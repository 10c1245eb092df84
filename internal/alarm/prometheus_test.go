package alarm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-serve/kiln"
)

// promServer is a stand-in for a Prometheus server's query_range endpoint.
// answer builds the response from the range asked for; the samples it
// returns are at start, start+step, ..., end, as Prometheus's are.
type promServer struct {
	*httptest.Server
	mu      sync.Mutex
	queries []url.Values
	answer  func(w http.ResponseWriter, start, end, step int64)
}

func newPromServer(t *testing.T) (*promServer, *http.Client) {
	t.Helper()
	s := &promServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /prom/api/v1/query_range", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		s.mu.Lock()
		s.queries = append(s.queries, q)
		answer := s.answer
		s.mu.Unlock()
		start, err1 := strconv.ParseInt(q.Get("start"), 10, 64)
		end, err2 := strconv.ParseInt(q.Get("end"), 10, 64)
		step, err3 := strconv.ParseInt(q.Get("step"), 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || q.Get("query") == "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"bad query"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		answer(w, start, end, step)
	})
	s.Server = httptest.NewServer(mux)
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		s.Close()
	})
	return s, &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func (s *promServer) setAnswer(f func(w http.ResponseWriter, start, end, step int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

func (s *promServer) lastQuery() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queries) == 0 {
		return nil
	}
	return s.queries[len(s.queries)-1]
}

// matrix writes a matrix with one series per element of series; each
// series gives the value at a sample time ("" leaves the sample out).
func matrix(w http.ResponseWriter, start, end, step int64, series ...func(t int64) string) {
	type sampleSeries struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	result := []sampleSeries{}
	for i, f := range series {
		s := sampleSeries{Metric: map[string]string{"instance": strconv.Itoa(i)}, Values: [][2]any{}}
		for t := start; t <= end; t += step {
			if v := f(t); v != "" {
				s.Values = append(s.Values, [2]any{json.Number(strconv.FormatInt(t, 10) + ".000"), v})
			}
		}
		result = append(result, s)
	}
	json.NewEncoder(w).Encode(map[string]any{
		"status": "success",
		"data":   map[string]any{"resultType": "matrix", "result": result},
	})
}

func promAlarm(url string) *kiln.Alarm {
	return &kiln.Alarm{
		AlarmName:          "prom",
		Statistic:          "Average",
		Period:             10,
		EvaluationPeriods:  3,
		Threshold:          0.05,
		ComparisonOperator: kiln.GreaterThanThreshold,
		Prometheus: &kiln.PrometheusSource{
			URL:   url + "/prom",
			Query: `sum(rate(errors_total[1m])) / sum(rate(requests_total[1m]))`,
		},
	}
}

func TestPrometheusSource(t *testing.T) {
	srv, client := newPromServer(t)
	src := NewPrometheusSource(client)
	a := promAlarm(srv.URL)
	now := time.Date(2024, 5, 1, 12, 0, 35, 0, time.UTC)
	start, end := Window(a, now) // 11:59:40 to 12:00:30
	ctx := context.Background()

	srv.setAnswer(func(w http.ResponseWriter, s, e, step int64) {
		matrix(w, s, e, step, func(t int64) string {
			switch t % 60 {
			case 0:
				return "NaN" // 0/0: no requests in that minute
			case 10:
				return "" // no sample
			}
			return strconv.FormatFloat(float64(t%60)/100, 'f', -1, 64)
		})
	})
	got, err := src.Datapoints(ctx, a, start, end)
	if err != nil {
		t.Fatal(err)
	}
	q := srv.lastQuery()
	if want := strconv.FormatInt(start.Add(10*time.Second).Unix(), 10); q.Get("start") != want {
		t.Errorf("start=%s, want %s (the end of the first period)", q.Get("start"), want)
	}
	if want := strconv.FormatInt(end.Unix(), 10); q.Get("end") != want {
		t.Errorf("end=%s, want %s", q.Get("end"), want)
	}
	if q.Get("step") != "10" || q.Get("query") != a.Prometheus.Query {
		t.Errorf("step=%s query=%s", q.Get("step"), q.Get("query"))
	}
	// Samples at 11:59:50 (0.5), 12:00:00 (NaN), 12:00:10 (none),
	// 12:00:20 (0.2), 12:00:30 (0.3), each the value of the period before.
	at := func(hms string) time.Time {
		t, _ := time.Parse("15:04:05", hms)
		return time.Date(2024, 5, 1, t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	}
	want := []Datapoint{
		{Timestamp: at("11:59:40"), Value: 0.5},
		{Timestamp: at("12:00:10"), Value: 0.2},
		{Timestamp: at("12:00:20"), Value: 0.3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("data points (-want +got):\n%s", diff)
	}
	if res := Evaluate(a, got, now); res.State != kiln.StateAlarm {
		t.Errorf("evaluated %s (%s), want ALARM from 3 of 3", res.State, res.Reason)
	}

	for _, c := range []struct {
		name    string
		answer  func(w http.ResponseWriter, s, e, step int64)
		points  int
		errWant string
	}{
		{"no series is no data", func(w http.ResponseWriter, s, e, step int64) { matrix(w, s, e, step) }, 0, ""},
		{"two series", func(w http.ResponseWriter, s, e, step int64) {
			one := func(int64) string { return "1" }
			matrix(w, s, e, step, one, one)
		}, 0, "returned 2 series"},
		{"scalar", func(w http.ResponseWriter, s, e, step int64) {
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"scalar","result":[%d,"7"]}}`, e)
		}, 1, ""},
		{"vector", func(w http.ResponseWriter, s, e, step int64) {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		}, 0, "returned a vector"},
		{"query error", func(w http.ResponseWriter, s, e, step int64) {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \")\""}`)
		}, 0, "HTTP 400: bad_data: 1:5: parse error"},
		{"not prometheus", func(w http.ResponseWriter, s, e, step int64) {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html>bad gateway</html>")
		}, 0, "HTTP 502: unexpected response"},
		{"bad sample", func(w http.ResponseWriter, s, e, step int64) {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}`)
		}, 0, "sample value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv.setAnswer(c.answer)
			got, err := src.Datapoints(ctx, a, start, end)
			if c.errWant != "" {
				if err == nil || !strings.Contains(err.Error(), c.errWant) {
					t.Fatalf("error %v, want one containing %q", err, c.errWant)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.points {
				t.Errorf("%d data points, want %d: %+v", len(got), c.points, got)
			}
		})
	}

	// A server that is not there.
	a.Prometheus.URL = "http://127.0.0.1:1"
	if _, err := src.Datapoints(ctx, a, start, end); err == nil {
		t.Error("no error from an unreachable server")
	}
}

// An engine with a Prometheus alarm evaluates it in the background and
// reports the change.
func TestEnginePrometheusAlarm(t *testing.T) {
	srv, client := newPromServer(t)
	var mu sync.Mutex
	errorRate := "0"
	srv.setAnswer(func(w http.ResponseWriter, s, e, step int64) {
		mu.Lock()
		v := errorRate
		mu.Unlock()
		matrix(w, s, e, step, func(int64) string { return v })
	})
	a := *promAlarm(srv.URL)
	h := startEngine(t, newMemSource(true), &memRepo{alarms: []kiln.Alarm{a}}, func(c *Config) {
		c.Prometheus = NewPrometheusSource(client)
	})
	waitChange := func(want string) {
		t.Helper()
		select {
		case got := <-h.changes:
			if got != want {
				t.Fatalf("change %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no change to %q", want)
		}
	}
	waitChange("prom OK")
	mu.Lock()
	errorRate = "0.5"
	mu.Unlock()
	// Evaluations run in the background; step until one sees the breach.
	for i := 0; ; i++ {
		h.step()
		if i > 1000 {
			t.Fatal("never went to ALARM")
		}
		if st, _ := h.engine.State("prom"); st.StateValue == kiln.StateAlarm {
			break
		}
		time.Sleep(time.Millisecond)
	}
	waitChange("prom ALARM")
}

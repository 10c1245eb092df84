package e2e

import (
	"sort"
	"sync"
	"testing"
	"time"
)

// BenchmarkRollback measures, for a canary of a model that fails every
// request under 200 requests/s of load, the time from the first failed
// request to the routing swap that gives all traffic back to blue, and the
// number of requests that failed in between, for several canary sizes.
//
//	go test ./internal/e2e -run '^$' -bench Rollback -benchtime 5x
func BenchmarkRollback(b *testing.B) {
	for _, canary := range []string{"1", "2"} {
		b.Run("canary="+canary+"of4", func(b *testing.B) {
			p := startKiln(b, "")
			p.applyYAML(demoYAML("bench", 4))
			p.waitInService("bench", 60*time.Second)
			p.mustCLI("alarms", "put", "bench-5xx", "--metric", "Invocation5XXErrors", "--endpoint", "bench", "--variant", "AllTraffic",
				"--statistic", "Sum", "--period", "1", "--evaluation-periods", "1", "--threshold", "0",
				"--comparison", "GreaterThanThreshold", "--treat-missing-data", "notBreaching")
			var swaps, fails []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				swap, failed := rollbackOnce(b, p, canary)
				swaps = append(swaps, float64(swap.Milliseconds()))
				fails = append(fails, float64(failed))
			}
			b.StopTimer()
			b.ReportMetric(median(swaps), "ms-to-blue")
			b.ReportMetric(median(fails), "failed-requests")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rollbackOnce deploys the failing config under paced load and waits for
// the rollback; it returns the time from the first failure to the swap and
// the failures counted until then.
func rollbackOnce(b *testing.B, p *kilnProc, canary string) (time.Duration, int) {
	const rate = 200
	// The alarm must be back to OK: an update that starts with it in ALARM
	// fails before any traffic moves.
	waitFor(b, 30*time.Second, "the alarm to clear", func() bool {
		st := p.alarmState("bench-5xx").StateValue
		return st == "OK" || st == "INSUFFICIENT_DATA"
	})
	stop := make(chan struct{})
	var mu sync.Mutex
	var fails []time.Time
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	wg.Add(1)
	go func() { // open-loop load: one request every 5 ms, however slow the answers
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := p.invoke("bench", body)
				if err != nil || r.status != 200 {
					mu.Lock()
					fails = append(fails, time.Now())
					mu.Unlock()
				}
			}()
		}
	}()
	p.mustCLI("deploy", "bench", "--config", "bench-bad", "--canary", canary, "--bake", "60s", "--alarm", "bench-5xx")
	var swapAt time.Time
	sawGreen := false
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ep, err := p.client.GetEndpoint(b.Context(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		s := greenShareOf(*ep)
		if s > 0 {
			sawGreen = true
		}
		if sawGreen && (s == 0 || ep.Deployment == nil) {
			swapAt = time.Now()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if swapAt.IsZero() {
		b.Fatal("no rollback")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fails) == 0 {
		b.Fatal("no failure seen")
	}
	n := 0
	for _, f := range fails {
		if !f.After(swapAt) {
			n++
		}
	}
	// Wait for the endpoint to settle before the next round.
	for i := 0; i < 600; i++ {
		ep, err := p.client.GetEndpoint(b.Context(), "bench")
		if err == nil && ep.Deployment == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return swapAt.Sub(fails[0]), n
}

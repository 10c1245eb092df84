package sim

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Regression is a new fleet to deploy over an old one.
type Regression struct {
	Name        string
	Blue, Green Fleet
	// Null is true when the new fleet is no worse than the old: every
	// rollback is a false one.
	Null bool
}

// Regressions are the cases of the table: the new fleet the same as the old
// (A/A), the same again while something else fails 2% of every fleet's
// requests (a downstream outage during the bake), then worse in one respect.
func Regressions() []Regression {
	b := Baseline
	errs := func(r float64) Fleet { f := b; f.ErrorRate = r; return f }
	return []Regression{
		{Name: "A/A", Blue: b, Green: b, Null: true},
		{Name: "A/A, both fleets 2% errors", Blue: errs(0.02), Green: errs(0.02), Null: true},
		{"errors 0.1% → 1%", b, errs(0.01), false},
		{"errors 0.1% → 5%", b, errs(0.05), false},
		{"100% errors", b, errs(1), false},
		{"p99 latency +20%", b, b.WithP99(1.2), false},
		{"p99 latency +100%", b, b.WithP99(2), false},
	}
}

// Rates are the traffic levels of the table, in requests per second.
var Rates = []int{10, 100, 1000}

// Plan says how many deployments to simulate per cell of the table.
type Plan struct {
	// AA is the number of A/A deployments per rate; AAFast the number at
	// 1000 requests per second or more, where each deployment costs a
	// million requests.
	AA, AAFast int
	// Regressed is the number of deployments per regression and rate, and
	// per rate of the other cases without a regression.
	Regressed int
	// Seed offsets every run's seed.
	Seed uint64
	// Workers run deployments at once; if zero, GOMAXPROCS.
	Workers int
}

// DefaultPlan is the plan of the table in docs/judge.md.
var DefaultPlan = Plan{AA: 1000, AAFast: 200, Regressed: 100}

// Cell is the outcomes of one regression at one rate, per method.
type Cell struct {
	Regression Regression
	Rate       int
	Runs       int
	Outcomes   [][]Outcome // by method, by run
}

// Experiment runs the plan and returns the cells in table order. Runs are
// spread over workers but each has its own seed, so the results do not
// depend on scheduling.
func Experiment(p Plan, methods []Method, progress io.Writer) ([]Cell, error) {
	var cells []Cell
	type job struct{ cell, run int }
	var jobs []job
	for _, reg := range Regressions() {
		for _, rate := range Rates {
			n := p.Regressed
			if reg.Null && reg.Blue == Baseline {
				n = p.AA
				if rate >= 1000 {
					n = p.AAFast
				}
			}
			c := Cell{Regression: reg, Rate: rate, Runs: n, Outcomes: make([][]Outcome, len(methods))}
			for m := range methods {
				c.Outcomes[m] = make([]Outcome, n)
			}
			for r := range n {
				jobs = append(jobs, job{len(cells), r})
			}
			cells = append(cells, c)
		}
	}
	workers := p.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// The costly jobs first, so that the workers finish together.
	slices.SortStableFunc(jobs, func(a, b job) int { return cells[b.cell].Rate - cells[a.cell].Rate })

	var mu sync.Mutex
	var firstErr error
	done := 0
	next := make(chan job)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				c := &cells[j.cell]
				seed := p.Seed + uint64(j.cell)<<32 + uint64(j.run)
				out, err := Run(Scenario{Rate: c.Rate, Blue: c.Regression.Blue, Green: c.Regression.Green, Seed: seed}, methods)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s at %d req/s, run %d: %w", c.Regression.Name, c.Rate, j.run, err)
				}
				for m := range out {
					c.Outcomes[m][j.run] = out[m]
				}
				done++
				if progress != nil && done%100 == 0 {
					fmt.Fprintf(progress, "\r%d/%d deployments", done, len(jobs))
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	if progress != nil {
		fmt.Fprintln(progress)
	}
	return cells, firstErr
}

// Summary of one method in one cell.
type Summary struct {
	Runs, RolledBack int
	// Medians over the runs that rolled back.
	Time   time.Duration
	Failed int64
}

// Summarize sums up the outcomes of a method.
func Summarize(outs []Outcome) Summary {
	s := Summary{Runs: len(outs)}
	var times []time.Duration
	var failed []int64
	for _, o := range outs {
		if o.RolledBack {
			s.RolledBack++
			times = append(times, o.Time)
			failed = append(failed, o.FailedRequests)
		}
	}
	if len(times) > 0 {
		slices.Sort(times)
		slices.Sort(failed)
		s.Time, s.Failed = times[len(times)/2], failed[len(failed)/2]
	}
	return s
}

// WriteTables writes the A/A table and the regression table as markdown.
func WriteTables(w io.Writer, cells []Cell, methods []Method) {
	head := func(first ...string) {
		cols := append(first, names(methods)...)
		fmt.Fprintf(w, "| %s |\n", strings.Join(cols, " | "))
		fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(cols)))
	}
	fmt.Fprintln(w, "False rollbacks when the new fleet is the same as the old (A/A), and which alarm caused them:")
	fmt.Fprintln(w)
	head("case", "traffic", "deployments")
	for _, c := range cells {
		if !c.Regression.Null {
			continue
		}
		row := []string{c.Regression.Name, fmt.Sprintf("%d req/s", c.Rate), fmt.Sprint(c.Runs)}
		for m := range methods {
			s := Summarize(c.Outcomes[m])
			cell := fmt.Sprintf("%s (%d)", pct(s.RolledBack, s.Runs), s.RolledBack)
			if by := byAlarm(c.Outcomes[m], methods[m]); len(methods[m].Alarms) > 1 && s.RolledBack > 0 {
				cell += ": " + by
			}
			row = append(row, cell)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Time from the first request on the new fleet to the rollback, and requests the new fleet failed meanwhile (medians over the deployments rolled back; the share of deployments rolled back when not all were):")
	fmt.Fprintln(w)
	head("regression", "traffic", "deployments")
	for _, c := range cells {
		if c.Regression.Null {
			continue
		}
		row := []string{c.Regression.Name, fmt.Sprintf("%d req/s", c.Rate), fmt.Sprint(c.Runs)}
		for m := range methods {
			s := Summarize(c.Outcomes[m])
			if s.RolledBack == 0 {
				row = append(row, fmt.Sprintf("no rollback (0/%d)", s.Runs))
				continue
			}
			cell := fmt.Sprintf("%s, %d failed", seconds(s.Time), s.Failed)
			if s.RolledBack < s.Runs {
				cell += fmt.Sprintf(" (%s)", pct(s.RolledBack, s.Runs))
			}
			row = append(row, cell)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
}

// byAlarm says how many rollbacks each of a method's alarms caused.
func byAlarm(outs []Outcome, m Method) string {
	var parts []string
	for _, a := range m.Alarms {
		n := 0
		for _, o := range outs {
			if o.RolledBack && strings.Contains(o.Reason, fmt.Sprintf("alarm %q", a.AlarmName)) {
				n++
			}
		}
		parts = append(parts, fmt.Sprintf("%s %d", a.MetricName, n))
	}
	return strings.Join(parts, ", ")
}

func names(methods []Method) []string {
	var out []string
	for _, m := range methods {
		out = append(out, m.Name)
	}
	return out
}

func pct(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
}

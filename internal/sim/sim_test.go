package sim

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

func outage() Fleet {
	f := Baseline
	f.ErrorRate = 1
	return f
}

func TestRunIsDeterministic(t *testing.T) {
	sc := Scenario{Rate: 100, Blue: Baseline, Green: Baseline.WithP99(2), Seed: 42}
	a, err := Run(sc, Methods())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(sc, Methods())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs of the same scenario differ:\n%+v\n%+v", a, b)
	}
}

// Skipping the controller's looks that Next says cannot change anything
// changes no outcome.
func TestSkippedLooksChangeNothing(t *testing.T) {
	for i, green := range []Fleet{Baseline, outage(), Baseline.WithP99(2)} {
		sc := Scenario{Rate: 50, Blue: Baseline, Green: green, Seed: uint64(i)}
		fast, err := Run(sc, Methods())
		if err != nil {
			t.Fatal(err)
		}
		sc.EveryLook = true
		slow, err := Run(sc, Methods())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("case %d: outcomes differ when Next is called every second:\n%+v\n%+v", i, fast, slow)
		}
	}
}

func TestJudgeRollsBackAnOutage(t *testing.T) {
	out, err := Run(Scenario{Rate: 100, Blue: Baseline, Green: outage(), Seed: 1}, []Method{JudgeMethod()})
	if err != nil {
		t.Fatal(err)
	}
	o := out[0]
	if !o.RolledBack || o.Time > 3*time.Second || o.FailedRequests > 30 {
		t.Fatalf("outcome %+v, want a rollback within 3 s and 30 failed requests", o)
	}
	if !strings.Contains(o.Reason, `alarm "judge" is in ALARM`) || !strings.Contains(o.Reason, "Errors: new fleet") {
		t.Errorf("reason %q does not name the judge and its evidence", o.Reason)
	}
}

// A/A deployments complete; the judge rolls back none of them (α = 1%).
func TestJudgeAA(t *testing.T) {
	runs := 20
	if raceEnabled {
		runs = 4
	}
	for i := range runs {
		out, err := Run(Scenario{Rate: 100, Blue: Baseline, Green: Baseline, Seed: uint64(1000 + i)}, []Method{JudgeMethod()})
		if err != nil {
			t.Fatal(err)
		}
		if o := out[0]; o.RolledBack {
			t.Errorf("run %d rolled back: %s", i, o.Reason)
		}
	}
}

// A linear deployment moves the share at every step; the judge, which
// conditions each request on its share, stays quiet on an A/A deployment
// and catches a regression.
func TestJudgeLinear(t *testing.T) {
	dc := &kiln.DeploymentConfig{BlueGreenUpdatePolicy: &kiln.BlueGreenUpdatePolicy{
		TrafficRoutingConfiguration: &kiln.TrafficRoutingConfig{
			Type: kiln.Linear, WaitIntervalInSeconds: 120,
			LinearStepSize: &kiln.CapacitySize{Type: kiln.CapacityPercent, Value: 20},
		},
	}}
	worse := Baseline
	worse.ErrorRate = 0.02
	runs := 10
	if raceEnabled {
		runs = 2
	}
	for i := range runs {
		out, err := Run(Scenario{Rate: 200, Blue: Baseline, Green: Baseline, Seed: uint64(i), Deployment: dc}, []Method{JudgeMethod()})
		if err != nil {
			t.Fatal(err)
		}
		if out[0].RolledBack {
			t.Errorf("A/A run %d rolled back: %s", i, out[0].Reason)
		}
		out, err = Run(Scenario{Rate: 200, Blue: Baseline, Green: worse, Seed: uint64(i), Deployment: dc}, []Method{JudgeMethod()})
		if err != nil {
			t.Fatal(err)
		}
		if !out[0].RolledBack {
			t.Errorf("run %d with 2%% errors on the new fleet completed", i)
		}
	}
}

func TestExperimentTables(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("simulates a hundred deployments")
	}
	var b strings.Builder
	cells, err := Experiment(Plan{AA: 3, AAFast: 1, Regressed: 2}, Methods(), nil)
	if err != nil {
		t.Fatal(err)
	}
	WriteTables(&b, cells, Methods())
	for _, want := range []string{"| A/A | 10 req/s | 3 |", "| 100% errors | 1000 req/s |", "threshold, 60 s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("tables lack %q:\n%s", want, b.String())
		}
	}
}

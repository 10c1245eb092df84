package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

func pct(v int) *kiln.CapacitySize   { return &kiln.CapacitySize{Type: kiln.CapacityPercent, Value: v} }
func count(v int) *kiln.CapacitySize { return &kiln.CapacitySize{Type: kiln.InstanceCount, Value: v} }

func canary(size *kiln.CapacitySize, wait, term int) *kiln.DeploymentConfig {
	return &kiln.DeploymentConfig{BlueGreenUpdatePolicy: &kiln.BlueGreenUpdatePolicy{
		TrafficRoutingConfiguration: &kiln.TrafficRoutingConfig{Type: kiln.Canary, WaitIntervalInSeconds: wait, CanarySize: size},
		TerminationWaitInSeconds:    term,
	}}
}

func linear(size *kiln.CapacitySize, wait, term int) *kiln.DeploymentConfig {
	return &kiln.DeploymentConfig{BlueGreenUpdatePolicy: &kiln.BlueGreenUpdatePolicy{
		TrafficRoutingConfiguration: &kiln.TrafficRoutingConfig{Type: kiln.Linear, WaitIntervalInSeconds: wait, LinearStepSize: size},
		TerminationWaitInSeconds:    term,
	}}
}

func allAtOnce(wait, term int) *kiln.DeploymentConfig {
	return &kiln.DeploymentConfig{BlueGreenUpdatePolicy: &kiln.BlueGreenUpdatePolicy{
		TrafficRoutingConfiguration: &kiln.TrafficRoutingConfig{Type: kiln.AllAtOnce, WaitIntervalInSeconds: wait},
		TerminationWaitInSeconds:    term,
	}}
}

func rolling(batch, rollback *kiln.CapacitySize, wait int) *kiln.RollingUpdatePolicy {
	return &kiln.RollingUpdatePolicy{MaximumBatchSize: batch, WaitIntervalInSeconds: wait, RollbackMaximumBatchSize: rollback}
}

func TestInstances(t *testing.T) {
	tests := []struct {
		size *kiln.CapacitySize
		n    int
		want int
	}{
		{pct(33), 3, 1},
		{pct(50), 3, 1},
		{pct(50), 4, 2},
		{pct(10), 4, 1}, // floor 0.4 → max(1, 0)
		{pct(25), 4, 1},
		{pct(50), 1, 1},
		{pct(5), 100, 5},
		{pct(34), 3, 1},
		{pct(67), 3, 2},
		{count(3), 10, 3},
		{nil, 10, 0},
	}
	for _, tt := range tests {
		if got := Instances(tt.size, tt.n); got != tt.want {
			t.Errorf("Instances(%+v, %d) = %d, want %d", tt.size, tt.n, got, tt.want)
		}
	}
}

// TestCanary is the Argo Rollouts style table: fleet size and canary size
// give the canary's instances and share.
func TestCanary(t *testing.T) {
	tests := []struct {
		name      string
		fleet     int
		canary    *kiln.CapacitySize
		expGreen  int
		expShare  float64
		expErrSub string
	}{
		{name: "33% of 3", fleet: 3, canary: pct(33), expGreen: 1, expShare: 1.0 / 3},
		{name: "50% of 3", fleet: 3, canary: pct(50), expGreen: 1, expShare: 1.0 / 3},
		{name: "25% of 4", fleet: 4, canary: pct(25), expGreen: 1, expShare: 0.25},
		{name: "50% of 4", fleet: 4, canary: pct(50), expGreen: 2, expShare: 0.5},
		{name: "10% of 4 rounds up to 1", fleet: 4, canary: pct(10), expGreen: 1, expShare: 0.25},
		{name: "20% of 10", fleet: 10, canary: pct(20), expGreen: 2, expShare: 0.2},
		{name: "percent of a single instance is the instance", fleet: 1, canary: pct(50), expGreen: 1, expShare: 1},
		{name: "1 of 4", fleet: 4, canary: count(1), expGreen: 1, expShare: 0.25},
		{name: "2 of 4 is half", fleet: 4, canary: count(2), expGreen: 2, expShare: 0.5},
		{name: "2 of 5", fleet: 5, canary: count(2), expGreen: 2, expShare: 0.4},
		{name: "3 of 4 is over half", fleet: 4, canary: count(3), expErrSub: "CanarySize.Value is 3 instance(s), more than half of the green fleet of 4 instance(s)"},
		{name: "3 of 5 is over half", fleet: 5, canary: count(3), expErrSub: "of 5 instance(s)"},
		{name: "1 of 1 is over half", fleet: 1, canary: count(1), expErrSub: "of 1 instance(s)"},
		{name: "60 percent", fleet: 10, canary: pct(60), expErrSub: "CanarySize.Value must be between 1 and 50 percent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := BlueGreen(canary(tt.canary, 600, 300), tt.fleet)
			if tt.expErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.expErrSub) || kiln.ErrorCode(err) != kiln.EINVALID {
					t.Fatalf("got error %v, want EINVALID containing %q", err, tt.expErrSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := []Step{
				{Kind: Canary, GreenActive: tt.expGreen, GreenShare: tt.expShare, Bake: 600 * time.Second, BakeSetting: WaitInterval},
				{Kind: Final, GreenActive: tt.fleet, GreenShare: 1, Bake: 300 * time.Second, BakeSetting: TerminationWait},
			}
			equalSteps(t, steps, want)
		})
	}
}

func TestLinear(t *testing.T) {
	tests := []struct {
		name      string
		fleet     int
		step      *kiln.CapacitySize
		expGreen  []int // green active per linear step
		expErrSub string
	}{
		{name: "25% of 4", fleet: 4, step: pct(25), expGreen: []int{1, 2, 3, 4}},
		{name: "50% of 4", fleet: 4, step: pct(50), expGreen: []int{2, 4}},
		{name: "40% of 5", fleet: 5, step: pct(40), expGreen: []int{2, 4, 5}},
		{name: "10% of 4 is 1 at a time", fleet: 4, step: pct(10), expGreen: []int{1, 2, 3, 4}},
		{name: "33% of 3", fleet: 3, step: pct(33), expGreen: []int{1, 2, 3}},
		{name: "20% of 10", fleet: 10, step: pct(20), expGreen: []int{2, 4, 6, 8, 10}},
		{name: "30% of 10 ends smaller", fleet: 10, step: pct(30), expGreen: []int{3, 6, 9, 10}},
		{name: "single instance", fleet: 1, step: pct(50), expGreen: []int{1}},
		{name: "count 3 of 7", fleet: 7, step: count(3), expGreen: []int{3, 6, 7}},
		{name: "count 4 of 7 is over half", fleet: 7, step: count(4), expErrSub: "LinearStepSize.Value is 4 instance(s), more than half of the green fleet of 7 instance(s)"},
		{name: "5 percent is under 10", fleet: 10, step: pct(5), expErrSub: "LinearStepSize.Value must be between 10 and 50 percent, got 5"},
		{name: "60 percent is over 50", fleet: 10, step: pct(60), expErrSub: "LinearStepSize.Value must be between 10 and 50 percent, got 60"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := BlueGreen(linear(tt.step, 60, 0), tt.fleet)
			if tt.expErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.expErrSub) {
					t.Fatalf("got error %v, want one containing %q", err, tt.expErrSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []Step
			for _, g := range tt.expGreen {
				share := float64(g) / float64(tt.fleet)
				want = append(want, Step{Kind: Linear, GreenActive: g, GreenShare: share, Bake: time.Minute, BakeSetting: WaitInterval})
			}
			want = append(want, Step{Kind: Final, GreenActive: tt.fleet, GreenShare: 1, BakeSetting: TerminationWait})
			equalSteps(t, steps, want)
		})
	}
}

func TestLinearQuarterShares(t *testing.T) {
	steps, err := BlueGreen(linear(pct(25), 60, 0), 4)
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, s := range steps {
		got = append(got, s.GreenShare)
	}
	want := []float64{0.25, 0.5, 0.75, 1, 1}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("shares %v, want %v", got, want)
		}
	}
}

func TestAllAtOnce(t *testing.T) {
	steps, err := BlueGreen(allAtOnce(120, 300), 3)
	if err != nil {
		t.Fatal(err)
	}
	equalSteps(t, steps, []Step{
		{Kind: All, GreenActive: 3, GreenShare: 1, Bake: 2 * time.Minute, BakeSetting: WaitInterval},
		{Kind: Final, GreenActive: 3, GreenShare: 1, Bake: 5 * time.Minute, BakeSetting: TerminationWait},
	})
}

func TestNoConfigIsAllAtOnceWithoutBake(t *testing.T) {
	for _, cfg := range []*kiln.DeploymentConfig{nil, {AutoRollbackConfiguration: &kiln.AutoRollbackConfiguration{Alarms: []kiln.AlarmRef{{AlarmName: "a"}}}}} {
		steps, err := BlueGreen(cfg, 2)
		if err != nil {
			t.Fatal(err)
		}
		equalSteps(t, steps, []Step{
			{Kind: All, GreenActive: 2, GreenShare: 1, BakeSetting: WaitInterval},
			{Kind: Final, GreenActive: 2, GreenShare: 1, BakeSetting: TerminationWait},
		})
	}
}

func TestBlueGreenErrors(t *testing.T) {
	tests := []struct {
		name   string
		cfg    *kiln.DeploymentConfig
		size   int
		errSub string
	}{
		{"empty fleet", nil, 0, "at least 1 instance"},
		{"wait over an hour", canary(pct(10), 3601, 0), 4, "WaitIntervalInSeconds must be between 0 and 3600 seconds, got 3601"},
		{"termination wait over an hour", canary(pct(10), 0, 4000), 4, "TerminationWaitInSeconds must be between 0 and 3600 seconds, got 4000"},
		{"rolling policy", &kiln.DeploymentConfig{RollingUpdatePolicy: rolling(pct(10), nil, 0)}, 4, "RollingUpdatePolicy"},
		{"timeout too short", func() *kiln.DeploymentConfig {
			c := canary(pct(10), 0, 0)
			c.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds = 599
			return c
		}(), 4, "MaximumExecutionTimeoutInSeconds must be between 600 and 28800 seconds, got 599"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BlueGreen(tt.cfg, tt.size)
			if err == nil || !strings.Contains(err.Error(), tt.errSub) || kiln.ErrorCode(err) != kiln.EINVALID {
				t.Fatalf("got %v, want EINVALID containing %q", err, tt.errSub)
			}
		})
	}
}

func TestRolling(t *testing.T) {
	type gr struct{ green, retired int }
	tests := []struct {
		name      string
		blue      int
		green     int
		batch     *kiln.CapacitySize
		exp       []gr // per batch: green after the batch, blue retired after its retire step
		expErrSub string
	}{
		{name: "25% of 4", blue: 4, green: 4, batch: pct(25), exp: []gr{{1, 1}, {2, 2}, {3, 3}, {4, 4}}},
		{name: "50% of 4", blue: 4, green: 4, batch: pct(50), exp: []gr{{2, 2}, {4, 4}}},
		{name: "5% of 4 is one", blue: 4, green: 4, batch: pct(5), exp: []gr{{1, 1}, {2, 2}, {3, 3}, {4, 4}}},
		{name: "40% of 5", blue: 5, green: 5, batch: pct(40), exp: []gr{{2, 2}, {4, 4}, {5, 5}}},
		{name: "single instance", blue: 1, green: 1, batch: pct(50), exp: []gr{{1, 1}}},
		{name: "count 2 of 5", blue: 5, green: 5, batch: count(2), exp: []gr{{2, 2}, {4, 4}, {5, 5}}},
		{name: "grow 2 to 4", blue: 2, green: 4, batch: pct(25), exp: []gr{{1, 0}, {2, 1}, {3, 1}, {4, 2}}},
		{name: "shrink 4 to 2", blue: 4, green: 2, batch: pct(50), exp: []gr{{1, 2}, {2, 4}}},
		{name: "count 3 of 4 is over half", blue: 4, green: 4, batch: count(3), expErrSub: "MaximumBatchSize.Value is 3 instance(s), more than half of the fleet of 4 instance(s)"},
		{name: "4 percent", blue: 4, green: 4, batch: pct(4), expErrSub: "MaximumBatchSize.Value must be between 5 and 50 percent, got 4"},
		{name: "51 percent", blue: 4, green: 4, batch: pct(51), expErrSub: "between 5 and 50 percent, got 51"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := RollingResize(rolling(tt.batch, nil, 30), tt.blue, tt.green)
			if tt.expErrSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.expErrSub) || kiln.ErrorCode(err) != kiln.EINVALID {
					t.Fatalf("got error %v, want EINVALID containing %q", err, tt.expErrSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != 2*len(tt.exp) {
				t.Fatalf("got %d steps %+v, want %d", len(steps), steps, 2*len(tt.exp))
			}
			prevRetired := 0
			for i, e := range tt.exp {
				b, r := steps[2*i], steps[2*i+1]
				if b.Kind != Batch || b.GreenActive != e.green || b.BlueRetired != prevRetired || b.Bake != 30*time.Second {
					t.Errorf("batch %d = %+v, want green %d, retired %d, bake 30s", i, b, e.green, prevRetired)
				}
				if r.Kind != Retire || r.GreenActive != e.green || r.BlueRetired != e.retired || r.Bake != 0 {
					t.Errorf("retire %d = %+v, want green %d, retired %d, no bake", i, r, e.green, e.retired)
				}
				wantShare := float64(e.green) / float64(e.green+tt.blue-prevRetired)
				if b.GreenShare != wantShare {
					t.Errorf("batch %d share %v, want %v", i, b.GreenShare, wantShare)
				}
				prevRetired = e.retired
			}
			if last := steps[len(steps)-1]; last.GreenShare != 1 || last.BlueRetired != tt.blue {
				t.Errorf("last step %+v, want share 1 and all %d old instances retired", last, tt.blue)
			}
		})
	}
}

func TestRollingSameSize(t *testing.T) {
	a, err := Rolling(rolling(pct(25), nil, 0), 4)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RollingResize(rolling(pct(25), nil, 0), 4, 4)
	equalSteps(t, a, b)
	// Shares proportional to instance counts: 1 new beside 4 old, then 1
	// beside 3 once the first old instance is retired.
	if a[0].GreenShare != 0.2 || a[1].GreenShare != 0.25 {
		t.Errorf("first batch shares %v, %v; want 0.2, 0.25", a[0].GreenShare, a[1].GreenShare)
	}
}

func TestRollbackBatch(t *testing.T) {
	tests := []struct {
		rb   *kiln.CapacitySize
		blue int
		want int
	}{
		{nil, 4, 4},
		{pct(25), 4, 1},
		{pct(100), 4, 4},
		{pct(10), 4, 1},
		{count(2), 4, 2},
		{count(10), 4, 4},
	}
	for _, tt := range tests {
		if got := RollbackBatch(rolling(pct(25), tt.rb, 0), tt.blue); got != tt.want {
			t.Errorf("RollbackBatch(%+v, %d) = %d, want %d", tt.rb, tt.blue, got, tt.want)
		}
	}
}

func TestRollbackStep(t *testing.T) {
	type bg struct{ blue, green int }
	tests := []struct {
		name              string
		rb                *kiln.CapacitySize
		blueSize, grnSize int
		blue, green       int
		exp               []bg
	}{
		{name: "all at once from halfway", rb: nil, blueSize: 4, grnSize: 4, blue: 2, green: 2, exp: []bg{{4, 0}}},
		{name: "one at a time from halfway", rb: count(1), blueSize: 4, grnSize: 4, blue: 2, green: 2, exp: []bg{{3, 1}, {4, 0}}},
		{name: "blue still whole is one swap", rb: count(1), blueSize: 4, grnSize: 4, blue: 4, green: 1, exp: []bg{{4, 0}}},
		{name: "25% from one old left", rb: pct(25), blueSize: 4, grnSize: 4, blue: 1, green: 3, exp: []bg{{2, 2}, {3, 1}, {4, 0}}},
		{name: "resized 4 to 2", rb: count(1), blueSize: 4, grnSize: 2, blue: 2, green: 1, exp: []bg{{3, 1}, {4, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := rolling(pct(25), tt.rb, 0)
			b, g := tt.blue, tt.green
			var got []bg
			for range 10 {
				b, g = RollbackStep(p, tt.blueSize, tt.grnSize, b, g)
				got = append(got, bg{b, g})
				if b == tt.blueSize && g == 0 {
					break
				}
			}
			if len(got) != len(tt.exp) {
				t.Fatalf("got %v, want %v", got, tt.exp)
			}
			for i := range got {
				if got[i] != tt.exp[i] {
					t.Fatalf("got %v, want %v", got, tt.exp)
				}
			}
		})
	}
}

func equalSteps(t *testing.T, got, want []Step) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d steps %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("step %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestHugeInstanceCount(t *testing.T) {
	const huge = int(^uint(0) >> 1)
	if _, err := BlueGreen(canary(count(huge), 0, 0), 4); err == nil {
		t.Fatal("a canary of MaxInt instances was accepted")
	}
	if _, err := Rolling(rolling(count(huge), nil, 0), 4); err == nil {
		t.Fatal("a batch of MaxInt instances was accepted")
	}
}

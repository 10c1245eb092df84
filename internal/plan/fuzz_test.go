package plan

import (
	"testing"

	"github.com/kiln-serve/kiln"
)

func sizeOf(kind uint8, value int) *kiln.CapacitySize {
	if kind%2 == 0 {
		return &kiln.CapacitySize{Type: kiln.CapacityPercent, Value: value}
	}
	return &kiln.CapacitySize{Type: kiln.InstanceCount, Value: value}
}

// FuzzBlueGreen checks the invariants of every blue/green plan: green's
// share never decreases and ends at exactly 1, a canary is at most half of
// the fleet (or the one instance of a one-instance fleet), every count lies
// in [0, size], blue is never retired, and the last step is the final bake.
func FuzzBlueGreen(f *testing.F) {
	f.Add(uint8(1), uint8(0), 25, 4, 600, 300)
	f.Add(uint8(2), uint8(0), 25, 4, 60, 0)
	f.Add(uint8(2), uint8(1), 3, 7, 0, 0)
	f.Add(uint8(0), uint8(0), 0, 1, 0, 0)
	f.Add(uint8(1), uint8(1), 1, 1, 0, 0)
	f.Fuzz(func(t *testing.T, typ, sizeKind uint8, value, fleet, wait, term int) {
		if fleet < -1 || fleet > 1000 {
			t.Skip()
		}
		routing := &kiln.TrafficRoutingConfig{WaitIntervalInSeconds: wait}
		switch typ % 3 {
		case 0:
			routing.Type = kiln.AllAtOnce
		case 1:
			routing.Type = kiln.Canary
			routing.CanarySize = sizeOf(sizeKind, value)
		case 2:
			routing.Type = kiln.Linear
			routing.LinearStepSize = sizeOf(sizeKind, value)
		}
		cfg := &kiln.DeploymentConfig{BlueGreenUpdatePolicy: &kiln.BlueGreenUpdatePolicy{
			TrafficRoutingConfiguration: routing, TerminationWaitInSeconds: term,
		}}
		steps, err := BlueGreen(cfg, fleet)
		if err != nil {
			if kiln.ErrorCode(err) != kiln.EINVALID {
				t.Fatalf("error %v has code %q, want EINVALID", err, kiln.ErrorCode(err))
			}
			return
		}
		if len(steps) < 2 {
			t.Fatalf("%d steps, want a traffic step and the final step", len(steps))
		}
		prev := 0.0
		for i, s := range steps {
			if s.GreenShare < prev {
				t.Fatalf("step %d share %v below the previous %v: %+v", i, s.GreenShare, prev, steps)
			}
			prev = s.GreenShare
			if s.GreenActive < 0 || s.GreenActive > fleet || s.BlueRetired != 0 {
				t.Fatalf("step %d counts out of range for a fleet of %d: %+v", i, fleet, s)
			}
			if s.GreenShare != float64(s.GreenActive)/float64(fleet) && s.GreenShare != 1 {
				t.Fatalf("step %d share %v is not active/size %d/%d", i, s.GreenShare, s.GreenActive, fleet)
			}
			if s.Kind == Canary && s.GreenActive > max(1, fleet/2) {
				t.Fatalf("canary of %d on a fleet of %d", s.GreenActive, fleet)
			}
			if s.Kind == Canary && s.GreenActive < 1 {
				t.Fatalf("empty canary")
			}
		}
		last := steps[len(steps)-1]
		if last.Kind != Final || last.GreenShare != 1 || last.GreenActive != fleet {
			t.Fatalf("last step %+v, want the final step at exactly 1.0 with all %d instances", last, fleet)
		}
		if routing.Type == kiln.Linear {
			linearSteps := steps[:len(steps)-1]
			if linearSteps[len(linearSteps)-1].GreenShare != 1 {
				t.Fatalf("linear plan ends at %v, want exactly 1", linearSteps[len(linearSteps)-1].GreenShare)
			}
			step := linearSteps[0].GreenActive
			for i := 1; i < len(linearSteps)-1; i++ {
				if d := linearSteps[i].GreenActive - linearSteps[i-1].GreenActive; d != step {
					t.Fatalf("linear step %d moves %d instances, want %d", i, d, step)
				}
			}
			if d := linearSteps[len(linearSteps)-1].GreenActive - prevActive(linearSteps); d > step || d < 1 {
				t.Fatalf("last linear step moves %d instances, want 1..%d", d, step)
			}
		}
	})
}

func prevActive(steps []Step) int {
	if len(steps) < 2 {
		return 0
	}
	return steps[len(steps)-2].GreenActive
}

// FuzzRolling checks rolling plans: green's share never decreases and ends
// at exactly 1; new instances never decrease and end at the new size; old
// retirements never decrease, never run ahead of the new capacity, and end
// with every old instance retired; batches respect the batch size.
func FuzzRolling(f *testing.F) {
	f.Add(uint8(0), 25, 4, 4)
	f.Add(uint8(1), 2, 5, 5)
	f.Add(uint8(0), 50, 2, 4)
	f.Add(uint8(0), 5, 4, 2)
	f.Fuzz(func(t *testing.T, sizeKind uint8, value, blue, green int) {
		if blue < -1 || blue > 500 || green < -1 || green > 500 {
			t.Skip()
		}
		p := &kiln.RollingUpdatePolicy{MaximumBatchSize: sizeOf(sizeKind, value)}
		steps, err := RollingResize(p, blue, green)
		if err != nil {
			if kiln.ErrorCode(err) != kiln.EINVALID {
				t.Fatalf("error %v has code %q, want EINVALID", err, kiln.ErrorCode(err))
			}
			return
		}
		batch := Instances(p.MaximumBatchSize, green)
		prevShare, prevGreen, prevRetired := 0.0, 0, 0
		for i, s := range steps {
			if s.GreenShare < prevShare || s.GreenActive < prevGreen || s.BlueRetired < prevRetired {
				t.Fatalf("step %d goes backwards: %+v after share %v green %d retired %d", i, s, prevShare, prevGreen, prevRetired)
			}
			if s.GreenActive-prevGreen > batch {
				t.Fatalf("step %d adds %d instances, batch is %d", i, s.GreenActive-prevGreen, batch)
			}
			if s.GreenActive < 1 || s.GreenActive > green || s.BlueRetired < 0 || s.BlueRetired > blue {
				t.Fatalf("step %d counts out of range (%d old, %d new): %+v", i, blue, green, s)
			}
			// Old capacity retired never exceeds the new capacity in place.
			if float64(s.BlueRetired)/float64(blue) > float64(s.GreenActive)/float64(green)+1e-12 {
				t.Fatalf("step %d retires %d of %d old with only %d of %d new", i, s.BlueRetired, blue, s.GreenActive, green)
			}
			prevShare, prevGreen, prevRetired = s.GreenShare, s.GreenActive, s.BlueRetired
		}
		last := steps[len(steps)-1]
		if last.GreenShare != 1 || last.GreenActive != green || last.BlueRetired != blue {
			t.Fatalf("last step %+v, want share exactly 1 with %d new and all %d old retired", last, green, blue)
		}
	})
}

// FuzzRollback checks that a rolling rollback only ever adds old instances
// and removes new ones, never leaves the variant with less capacity than it
// had, and ends with the whole old fleet and no new instance.
func FuzzRollback(f *testing.F) {
	f.Add(uint8(1), 1, 4, 4, 2, 2, true)
	f.Add(uint8(0), 25, 4, 4, 1, 3, true)
	f.Add(uint8(0), 0, 4, 2, 2, 1, false)
	f.Fuzz(func(t *testing.T, sizeKind uint8, value, blueSize, greenSize, blue, green int, withRollback bool) {
		if blueSize < 1 || blueSize > 500 || greenSize < 1 || greenSize > 500 || blue < 0 || blue > blueSize || green < 0 || green > greenSize {
			t.Skip()
		}
		p := &kiln.RollingUpdatePolicy{MaximumBatchSize: &kiln.CapacitySize{Type: kiln.CapacityPercent, Value: 50}}
		if withRollback {
			p.RollbackMaximumBatchSize = sizeOf(sizeKind, value)
			if err := (&kiln.DeploymentConfig{RollingUpdatePolicy: p}).Validate(); err != nil {
				t.Skip()
			}
		}
		capacity := func(b, g int) float64 { return float64(b)/float64(blueSize) + float64(g)/float64(greenSize) }
		start := min(1, capacity(blue, green))
		for i := 0; ; i++ {
			if i > blueSize+1 {
				t.Fatalf("rollback did not end after %d batches", i)
			}
			nb, ng := RollbackStep(p, blueSize, greenSize, blue, green)
			if nb < blue || ng > green || nb > blueSize || ng < 0 {
				t.Fatalf("batch %d goes from (%d, %d) to (%d, %d)", i, blue, green, nb, ng)
			}
			if capacity(nb, ng) < start-1e-12 {
				t.Fatalf("batch %d leaves capacity %v, below %v", i, capacity(nb, ng), start)
			}
			blue, green = nb, ng
			if blue == blueSize && green == 0 {
				return
			}
		}
	})
}

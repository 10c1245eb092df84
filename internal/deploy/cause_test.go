package deploy

import (
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// TestRollbackCause: the event that ends a rolled-back update says why in
// Cause, one of the kiln.Cause constants, so that a program (kiln deploy
// --watch's exit status) need not read the reason's words.
func TestRollbackCause(t *testing.T) {
	tests := []struct {
		name  string
		sc    scenario
		phase string
		cause string
	}{
		{"completed", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a"))}, kiln.PhaseCompleted, ""},
		{"alarm", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a")), alarm: 300 * time.Second}, kiln.PhaseRolledBack, kiln.CauseAlarm},
		{"alarm-before-traffic", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a")), alarm: -1}, kiln.PhaseRolledBack, kiln.CauseAlarm},
		{"launch-failure", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a")), health: failingGreen}, kiln.PhaseRolledBack, kiln.CauseLaunchFailed},
		{"stop", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a")), stop: 100 * time.Second}, kiln.PhaseRolledBack, kiln.CauseOperator},
		{"timeout", scenario{start: startedWith(c1, c2, canaryConfig(count(1), 600, 300, "a")), health: neverHealthyGreen}, kiln.PhaseRolledBack, kiln.CauseTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.sc.start(t)
			run := tt.sc.run(t, cloneEndpoint(w.ep), t0)
			if len(run.history) == 0 {
				t.Fatal("no history")
			}
			last := run.history[len(run.history)-1]
			if last.Phase != tt.phase || last.Cause != tt.cause {
				t.Errorf("last event %s with cause %q, want %s with cause %q (%s)", last.Phase, last.Cause, tt.phase, tt.cause, last.Message)
			}
		})
	}
}

// neverHealthyGreen: the new fleet's instances start and never pass their
// health checks, so the update runs into its execution timeout.
func neverHealthyGreen(_ *world, f kiln.Fleet) FleetStatus {
	if f.EndpointConfigName == "c2" {
		return FleetStatus{Starting: f.InstanceCount}
	}
	return FleetStatus{Healthy: f.InstanceCount}
}

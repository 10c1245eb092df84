package plan

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// FuzzDeploymentConfigRecord decodes a whole DeploymentConfig, validates
// it and, if valid, plans it for fleets of every size Kiln allows: no
// panic, and every bake and the execution timeout are non-negative
// durations within the limits (no overflow of seconds × time.Second).
func FuzzDeploymentConfigRecord(f *testing.F) {
	f.Add(`{"BlueGreenUpdatePolicy":{"TrafficRoutingConfiguration":{"Type":"CANARY","WaitIntervalInSeconds":3600,"CanarySize":{"Type":"INSTANCE_COUNT","Value":1}},"TerminationWaitInSeconds":3600,"MaximumExecutionTimeoutInSeconds":28800}}`, uint8(4))
	f.Add(`{"RollingUpdatePolicy":{"MaximumBatchSize":{"Type":"CAPACITY_PERCENT","Value":50},"WaitIntervalInSeconds":9223372036854775807,"RollbackMaximumBatchSize":{"Type":"INSTANCE_COUNT","Value":9223372036854775807}}}`, uint8(100))
	f.Add(`{"BlueGreenUpdatePolicy":{"TrafficRoutingConfiguration":{"Type":"LINEAR","WaitIntervalInSeconds":1,"LinearStepSize":{"Type":"CAPACITY_PERCENT","Value":10}}}}`, uint8(7))
	f.Fuzz(func(t *testing.T, js string, size uint8) {
		var cfg kiln.DeploymentConfig
		if json.Unmarshal([]byte(js), &cfg) != nil {
			return
		}
		if cfg.Validate() != nil {
			return
		}
		n := int(size)%kiln.MaxInstancesPerVariant + 1
		if tmo := cfg.ExecutionTimeout(); tmo < kiln.MinExecutionTimeoutSecond || tmo > kiln.MaxExecutionTimeoutSecond {
			t.Fatalf("execution timeout %d s", tmo)
		}
		check := func(steps []Step) {
			for _, s := range steps {
				if s.Bake < 0 || s.Bake > kiln.MaxWaitIntervalSeconds*time.Second {
					t.Fatalf("bake %v", s.Bake)
				}
			}
		}
		if cfg.RollingUpdatePolicy != nil {
			steps, err := Rolling(cfg.RollingUpdatePolicy, n)
			if err == nil {
				check(steps)
			}
			_ = RollbackBatch(cfg.RollingUpdatePolicy, n)
			return
		}
		steps, err := BlueGreen(&cfg, n)
		if err == nil {
			check(steps)
		}
	})
}

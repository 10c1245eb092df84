package main

import (
	"fmt"

	"github.com/kiln-serve/kiln"
)

// evidence sets the DeploymentConfig's MinRequestsPerBake and
// EvidenceTimeoutInSeconds from --min-requests and --evidence-timeout.
// Without --min-requests, an update watched by alarms needs at least one
// request on the new fleet per bake: alarms that saw no traffic prove
// nothing, and `kiln deploy` is Kiln's own client, free of SageMaker's
// default.
func (f *deployFlags) evidence(dc *kiln.DeploymentConfig) error {
	n := f.minRequests
	switch {
	case n < -1:
		return fmt.Errorf("--min-requests %d: want a number of requests, 0 for none", n)
	case n == -1 && len(f.alarms) > 0:
		n = 1
	case n == -1:
		n = 0
	}
	t, err := seconds("evidence-timeout", f.evidenceTimeout)
	if err != nil {
		return err
	}
	if t > 0 && n == 0 {
		return fmt.Errorf("--evidence-timeout applies only with --min-requests")
	}
	dc.MinRequestsPerBake, dc.EvidenceTimeoutInSeconds = n, t
	return nil
}

package main

import (
	"fmt"
	"strconv"
	"strings"

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

// evidenceLines tells, in kiln status, what evidence the deployment in
// progress needs and which of its bakes saw none, or that the last update
// was promoted without any.
func evidenceLines(ep *kiln.Endpoint) string {
	d := ep.Deployment
	if d == nil {
		if ep.EvidenceWarning != "" {
			return "WARNING: " + ep.EvidenceWarning + "\n"
		}
		return ""
	}
	var b strings.Builder
	if d.MinRequestsPerBake > 0 {
		fmt.Fprintf(&b, "Evidence: each bake needs %d request(s) answered by the new fleet (MinRequestsPerBake)\n", d.MinRequestsPerBake)
	}
	if len(d.BlindBakes) > 0 {
		steps := make([]string, len(d.BlindBakes))
		for i, s := range d.BlindBakes {
			steps[i] = strconv.Itoa(s)
		}
		fmt.Fprintf(&b, "WARNING: no evidence: the new fleet answered no request during the bake of step(s) %s\n", strings.Join(steps, ", "))
	}
	return b.String()
}

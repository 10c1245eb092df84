package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kiln-serve/kiln"
)

// defaultApplyTimeout bounds how long apply waits for its endpoints: as
// long as the AWS CLI's endpoint-in-service waiter (60 polls, 30 s apart).
const defaultApplyTimeout = 30 * time.Minute

// applyPoll is how often apply looks at the endpoints it waits for.
const applyPoll = 500 * time.Millisecond

// waitApplied waits until no endpoint the file declares is being created
// or updated, prints what each became, and reports, naming the endpoint
// and its FailureReason, one that failed or that does not run the config
// the file declares (its update was rolled back or stopped). An endpoint
// still changing when the timeout passes is an error too.
func waitApplied(ctx context.Context, c *cli, cl kiln.Service, f *ApplyFile, timeout time.Duration) error {
	if len(f.Endpoints) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var errs []error
	for _, e := range f.Endpoints {
		ep, err := waitSettled(ctx, cl, e.EndpointName)
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ep != nil:
			errs = append(errs, fmt.Errorf("endpoint %s is still %s after %v (follow it with kiln status %s --watch; --timeout waits longer, --wait=false not at all)", e.EndpointName, ep.EndpointStatus, timeout, e.EndpointName))
			continue
		case err != nil:
			return fmt.Errorf("endpoint %s: %w", e.EndpointName, err)
		}
		switch {
		case ep.EndpointStatus == kiln.StatusFailed || ep.EndpointStatus == kiln.StatusUpdateRollbackFailed:
			errs = append(errs, fmt.Errorf("endpoint %s is %s: %s", e.EndpointName, ep.EndpointStatus, orUnknown(ep.FailureReason)))
		case ep.EndpointConfigName != e.EndpointConfigName:
			errs = append(errs, fmt.Errorf("endpoint %s is %s on %s, not on %s as declared: %s", e.EndpointName, ep.EndpointStatus, ep.EndpointConfigName, e.EndpointConfigName, orUnknown(ep.FailureReason)))
		default:
			fmt.Fprintf(c.out, "endpoint/%s %s on %s\n", e.EndpointName, ep.EndpointStatus, ep.EndpointConfigName)
		}
	}
	return errors.Join(errs...)
}

func orUnknown(reason string) string {
	if reason == "" {
		return "no reason recorded (kiln history and kiln logs may say more)"
	}
	return reason
}

// waitSettled polls the endpoint until no deployment runs on it and its
// status is not a passing one. On ctx's end it returns the endpoint as last
// seen with ctx's error.
func waitSettled(ctx context.Context, cl kiln.Service, name string) (*kiln.Endpoint, error) {
	var last *kiln.Endpoint
	for {
		ep, err := cl.GetEndpoint(ctx, name)
		switch {
		case err != nil && ctx.Err() != nil:
			return last, ctx.Err()
		case err != nil:
			return nil, err
		}
		last = ep
		switch ep.EndpointStatus {
		case kiln.StatusCreating, kiln.StatusUpdating, kiln.StatusSystemUpdating, kiln.StatusRollingBack:
		default:
			if ep.Deployment == nil {
				return ep, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(applyPoll):
		}
	}
}

package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln"
)

// parseSize reads "25%" as CAPACITY_PERCENT and "2" as INSTANCE_COUNT.
func parseSize(flag, s string) (*kiln.CapacitySize, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: want a percentage such as 25%% or an instance count such as 2", flag, s)
		}
		return &kiln.CapacitySize{Type: kiln.CapacityPercent, Value: v}, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return nil, fmt.Errorf("--%s %q: want a percentage such as 25%% or an instance count such as 2", flag, s)
	}
	return &kiln.CapacitySize{Type: kiln.InstanceCount, Value: v}, nil
}

func seconds(flag string, d time.Duration) (int, error) {
	if d < 0 || d%time.Second != 0 {
		return 0, fmt.Errorf("--%s %v: want a whole number of seconds", flag, d)
	}
	return int(d / time.Second), nil
}

type deployFlags struct {
	config, canary, linear, rolling, rollbackBatch string
	allAtOnce, retain, watch                       bool
	bake, finalBake, timeout                       time.Duration
	alarms                                         []string
	minRequests                                    int // -1: 1 with --alarm, else 0
	evidenceTimeout                                time.Duration
}

func (f *deployFlags) deploymentConfig() (*kiln.DeploymentConfig, error) {
	n := 0
	for _, set := range []bool{f.canary != "", f.linear != "", f.rolling != "", f.allAtOnce} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, fmt.Errorf("choose one of --canary, --linear, --all-at-once and --rolling")
	}
	bake, err := seconds("bake", f.bake)
	if err != nil {
		return nil, err
	}
	final, err := seconds("final-bake", f.finalBake)
	if err != nil {
		return nil, err
	}
	timeout, err := seconds("timeout", f.timeout)
	if err != nil {
		return nil, err
	}
	dc := &kiln.DeploymentConfig{}
	if f.rolling != "" {
		size, err := parseSize("rolling", f.rolling)
		if err != nil {
			return nil, err
		}
		ru := &kiln.RollingUpdatePolicy{MaximumBatchSize: size, WaitIntervalInSeconds: bake, MaximumExecutionTimeoutInSeconds: timeout}
		if f.rollbackBatch != "" {
			if ru.RollbackMaximumBatchSize, err = parseSize("rollback-batch", f.rollbackBatch); err != nil {
				return nil, err
			}
		}
		dc.RollingUpdatePolicy = ru
	} else {
		tr := &kiln.TrafficRoutingConfig{Type: kiln.AllAtOnce, WaitIntervalInSeconds: bake}
		switch {
		case f.canary != "":
			tr.Type = kiln.Canary
			if tr.CanarySize, err = parseSize("canary", f.canary); err != nil {
				return nil, err
			}
		case f.linear != "":
			tr.Type = kiln.Linear
			if tr.LinearStepSize, err = parseSize("linear", f.linear); err != nil {
				return nil, err
			}
		}
		dc.BlueGreenUpdatePolicy = &kiln.BlueGreenUpdatePolicy{TrafficRoutingConfiguration: tr, TerminationWaitInSeconds: final, MaximumExecutionTimeoutInSeconds: timeout}
	}
	if len(f.alarms) > 0 {
		ar := &kiln.AutoRollbackConfiguration{}
		for _, a := range f.alarms {
			ar.Alarms = append(ar.Alarms, kiln.AlarmRef{AlarmName: a})
		}
		dc.AutoRollbackConfiguration = ar
	}
	if err := f.evidence(dc); err != nil {
		return nil, err
	}
	return dc, nil
}

func newDeployCmd(c *cli) *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "deploy ENDPOINT --config NEW [--canary N|N% | --linear N|N% | --all-at-once | --rolling N|N%] [--bake D] [--alarm NAME]...",
		Short: "Update an endpoint to a new endpoint config, shifting traffic safely",
		Long: `deploy replaces what an endpoint runs with the endpoint config --config.

Blue/green (the default): the new (green) fleet is provisioned beside the old (blue)
one, then traffic moves: all at once, a canary first, or in linear steps, each
followed by a bake of --bake during which the --alarm alarms are watched. After
the last step, --final-bake keeps blue running while alarms are still watched. An
alarm in ALARM during any bake sends all traffic back to blue at once.

--rolling replaces instances in batches instead, without a second full fleet.`,
		Example: `  kiln deploy demo --config demo-v2 --canary 25% --bake 10m --alarm demo-5xx
  kiln deploy demo --config demo-v2 --linear 25% --bake 1m --alarm demo-5xx --watch
  kiln deploy demo --config demo-v2 --rolling 25% --bake 30s --alarm demo-5xx`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dc, err := f.deploymentConfig()
			if err != nil {
				return err
			}
			in := kiln.UpdateEndpointInput{EndpointName: args[0], EndpointConfigName: f.config, DeploymentConfig: dc, RetainAllVariantProperties: f.retain}
			ep, err := c.client().UpdateEndpoint(cmd.Context(), in)
			if err != nil {
				return err
			}
			if f.watch {
				id := ""
				if ep.Deployment != nil {
					id = ep.Deployment.ID
				}
				return watchStatus(cmd.Context(), c, args[0], true, id)
			}
			if c.json() {
				return c.printJSON(ep)
			}
			fmt.Fprintf(c.out, "endpoint/%s updating to %s; follow it with: %s status %s --watch\n", args[0], f.config, selfCommand(), args[0])
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "the endpoint config to deploy")
	fl.StringVar(&f.canary, "canary", "", "canary size: a percentage of the new fleet (25%) or an instance count (1)")
	fl.StringVar(&f.linear, "linear", "", "linear step size: a percentage of the new fleet (10% to 50%) or an instance count")
	fl.BoolVar(&f.allAtOnce, "all-at-once", false, "move all traffic at once (the default)")
	fl.StringVar(&f.rolling, "rolling", "", "rolling update batch size: a percentage (5% to 50%) or an instance count")
	fl.StringVar(&f.rollbackBatch, "rollback-batch", "", "rolling update: batch size when rolling back (default all at once)")
	fl.DurationVar(&f.bake, "bake", 0, "bake after each traffic step (WaitIntervalInSeconds), at most 1h")
	fl.DurationVar(&f.finalBake, "final-bake", 0, "bake with all traffic on the new fleet before the old one stops (TerminationWaitInSeconds)")
	fl.DurationVar(&f.timeout, "timeout", 0, "roll back if the deployment takes longer (MaximumExecutionTimeoutInSeconds, 10m to 8h; default 8h)")
	fl.StringArrayVar(&f.alarms, "alarm", nil, "alarm watched during bakes; rolls back when in ALARM (repeatable, up to 10)")
	fl.BoolVar(&f.retain, "retain-variant-properties", false, "keep the current instance counts and weights (RetainAllVariantProperties)")
	fl.BoolVar(&f.watch, "watch", false, "follow the deployment until it ends, and exit with its outcome: 0 completed, 3 rolled back by an alarm, 4 stopped, 5 failed, 6 timed out, 7 rolled back for want of evidence (--min-requests), 8 completed without evidence")
	fl.IntVar(&f.minRequests, "min-requests", -1, "requests the new fleet must answer during each bake before it may end (MinRequestsPerBake); default 1 with --alarm, else 0")
	fl.DurationVar(&f.evidenceTimeout, "evidence-timeout", 0, "roll back if a bake waits longer than this for its --min-requests (EvidenceTimeoutInSeconds; default: until --timeout)")
	cmd.MarkFlagRequired("config")
	return cmd
}

func newRollbackCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "rollback ENDPOINT",
		Short:   "Roll back the update in progress: all traffic back to the old fleet at once",
		Example: "  kiln rollback demo",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := c.client().RollbackEndpoint(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "endpoint/%s rolling back\n", args[0])
			return nil
		},
	}
}

func newStopCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "stop ENDPOINT",
		Short:   "Stop the update in progress (it rolls back)",
		Example: "  kiln stop demo",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := c.client().StopDeployment(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "endpoint/%s: update stopped, rolling back\n", args[0])
			return nil
		},
	}
}

func newHistoryCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "history ENDPOINT",
		Short:   "Show an endpoint's deployment history",
		Example: "  kiln history demo",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			evs, err := c.client().EndpointHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.json() {
				return c.printJSON(evs)
			}
			var rows [][]string
			for _, e := range evs {
				rows = append(rows, []string{e.Time.Local().Format("15:04:05.000"), e.DeploymentID, e.Phase, fmt.Sprintf("%.0f%%", e.GreenShare*100), e.Message})
			}
			c.table([]string{"TIME", "DEPLOYMENT", "PHASE", "NEW", "WHAT"}, rows)
			return nil
		},
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln"
)

func newStatusCmd(c *cli) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status ENDPOINT [--watch]",
		Short: "Show an endpoint's deployment progress: step, share on the new fleet, bake time left, alarms",
		Example: `  kiln status demo
  kiln status demo --watch`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return watchStatus(cmd.Context(), c, args[0], watch)
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "keep showing the status until the deployment ends (Ctrl-C to leave)")
	return cmd
}

// watchStatus prints the status once, or until the deployment ends.
func watchStatus(ctx context.Context, c *cli, name string, watch bool) error {
	cl := c.client()
	last := ""
	sawDeployment := false
	for {
		ep, err := cl.GetEndpoint(ctx, name)
		if err != nil {
			return err
		}
		alarms := map[string]kiln.AlarmState{}
		names := ep.LastDeploymentConfig.AlarmNames()
		if ep.Deployment != nil {
			names = ep.Deployment.DeploymentConfig.AlarmNames()
		}
		for _, n := range names {
			if a, err := cl.GetAlarm(ctx, n); err == nil {
				alarms[n] = a.AlarmState
			}
		}
		view := renderStatus(ep, names, alarms, time.Now())
		if c.json() {
			if err := c.printJSON(ep); err != nil {
				return err
			}
		} else if view != last {
			if watch && last != "" {
				fmt.Fprintln(c.out, strings.Repeat("─", 60))
			}
			io.WriteString(c.out, view)
			last = view
		}
		if ep.Deployment != nil {
			sawDeployment = true
		}
		if !watch || (ep.Deployment == nil && (sawDeployment || ep.EndpointStatus != kiln.StatusCreating)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

var bakeRE = regexp.MustCompile(`Baking for (\d+) seconds`)

// renderStatus draws the status of an endpoint as text.
func renderStatus(ep *kiln.Endpoint, alarmNames []string, alarms map[string]kiln.AlarmState, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Endpoint %s: %s on %s\n", ep.EndpointName, ep.EndpointStatus, ep.EndpointConfigName)
	if ep.FailureReason != "" {
		fmt.Fprintf(&b, "Failure reason: %s\n", ep.FailureReason)
	}
	b.WriteString(evidenceLines(ep))
	if d := ep.Deployment; d != nil {
		share := greenShare(*ep)
		fmt.Fprintf(&b, "Deployment %s (%s) to %s: phase %s, step %d\n", d.ID, d.Kind, d.EndpointConfigName, d.Phase, d.Step)
		fmt.Fprintf(&b, "  new fleet [%s] %3.0f%% of traffic\n", bar(share, 30), share*100)
		if d.RollbackReason != "" {
			fmt.Fprintf(&b, "  rolling back: %s\n", d.RollbackReason)
		}
	}
	for _, v := range ep.ProductionVariants {
		for _, s := range v.VariantStatus {
			line := fmt.Sprintf("  %s: %s: %s", v.VariantName, s.Status, s.StatusMessage)
			if m := bakeRE.FindStringSubmatch(s.StatusMessage); m != nil {
				secs, _ := strconv.Atoi(m[1])
				left := s.StartTime.Add(time.Duration(secs) * time.Second).Sub(now).Round(time.Second)
				if left < 0 {
					left = 0
				}
				line += fmt.Sprintf(" (%v left)", left)
			}
			b.WriteString(line + "\n")
		}
	}
	for _, n := range alarmNames {
		st, ok := alarms[n]
		if !ok {
			fmt.Fprintf(&b, "  alarm %s: (missing)\n", n)
			continue
		}
		fmt.Fprintf(&b, "  alarm %s: %s — %s\n", n, st.StateValue, st.StateReason)
	}
	return b.String()
}

func bar(frac float64, width int) string {
	n := int(frac*float64(width) + 0.5)
	if n < 0 {
		n = 0
	}
	if n > width {
		n = width
	}
	return strings.Repeat("█", n) + strings.Repeat("·", width-n)
}

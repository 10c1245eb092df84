package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newStatusCmd(c *cli) *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status ENDPOINT [--watch]",
		Short: "Show an endpoint's deployment progress: step, share on the new fleet, bake time left, alarms",
		Long: `status shows an endpoint's deployment progress. With --watch it follows the
deployment in progress until it ends, redrawn in place on a terminal and one line
per change otherwise, and exits with its outcome: 0 completed, 3 rolled back by an
alarm or judge, 4 stopped by an operator, 5 failed, 6 timed out, 130 interrupted
(the deployment goes on). With no deployment in progress, --watch exits with the
outcome of the last one.`,
		Example: `  kiln status demo
  kiln status demo --watch`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return watchStatus(cmd.Context(), c, args[0], watch, "")
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the deployment until it ends, and exit with its outcome (Ctrl-C to leave)")
	return cmd
}

func jsonText(v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode JSON: %w", err)
	}
	return string(b) + "\n", nil
}

var bakeRE = regexp.MustCompile(`Baking for (\d+) seconds`)

// renderStatus draws the status of an endpoint as lines of at most width
// characters (width <= 0: no limit). The last update's failure shows only
// while no other update runs.
func renderStatus(st status, width int) []string {
	ep := st.ep
	var lines []string
	add := func(format string, a ...any) { lines = append(lines, cut(fmt.Sprintf(format, a...), width)) }
	add("Endpoint %s: %s on %s", ep.EndpointName, ep.EndpointStatus, ep.EndpointConfigName)
	if ep.FailureReason != "" && ep.Deployment == nil {
		add("Failure reason: %s", ep.FailureReason)
	}
	for _, l := range strings.Split(strings.TrimSuffix(evidenceLines(ep), "\n"), "\n") {
		if l != "" {
			add("%s", l)
		}
	}
	if d := ep.Deployment; d != nil {
		share := greenShare(*ep)
		add("Deployment %s (%s) to %s: phase %s, step %d", d.ID, d.Kind, d.EndpointConfigName, d.Phase, d.Step)
		add("  new fleet [%s] %3.0f%% of traffic", bar(share, 30), share*100)
		if d.RollbackReason != "" {
			add("  rolling back: %s", d.RollbackReason)
		}
	}
	for _, v := range ep.ProductionVariants {
		for _, s := range v.VariantStatus {
			left := ""
			if m := bakeRE.FindStringSubmatch(s.StatusMessage); m != nil {
				secs, _ := strconv.Atoi(m[1])
				l := s.StartTime.Add(time.Duration(secs) * time.Second).Sub(st.now).Round(time.Second)
				if l < 0 {
					l = 0
				}
				left = fmt.Sprintf(" (%v left)", l)
			}
			msg := s.StatusMessage
			if width > 0 {
				// The countdown must stay in view: cut the message, not it.
				msg = cut(msg, width-len([]rune(fmt.Sprintf("  %s: %s: ", v.VariantName, s.Status)))-len([]rune(left)))
			}
			add("  %s: %s: %s%s", v.VariantName, s.Status, msg, left)
		}
	}
	for _, n := range st.alarmNames {
		a, ok := st.alarms[n]
		if !ok {
			add("  alarm %s: (missing)", n)
			continue
		}
		add("  alarm %s: %s — %s", n, a.StateValue, a.StateReason)
	}
	return lines
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

package main

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln/internal/metrics"
)

func newMetricsCmd(c *cli) *cobra.Command {
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "metrics ENDPOINT",
		Short: "Show an endpoint's recent invocations, errors and latency per variant and fleet",
		Example: `  kiln metrics demo
  kiln metrics demo --window 5m -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var vs []metrics.VariantSummary
			path := fmt.Sprintf("/v1/endpoints/%s/metrics?window=%s", url.PathEscape(args[0]), url.QueryEscape(window.String()))
			if err := c.client().Get(cmd.Context(), path, &vs); err != nil {
				return err
			}
			if c.json() {
				return c.printJSON(vs)
			}
			fmt.Fprintf(c.out, "Last %v:\n", window)
			var rows [][]string
			row := func(variant, config string, s metrics.Summary) []string {
				return []string{variant, config, strconv.FormatInt(s.Invocations, 10), strconv.FormatInt(s.Invocation4XXErrors, 10),
					strconv.FormatInt(s.Invocation5XXErrors, 10), strconv.FormatInt(s.InvocationModelErrors, 10),
					ms(s.ModelLatencyP50), ms(s.ModelLatencyP90), ms(s.ModelLatencyP99)}
			}
			for _, v := range vs {
				rows = append(rows, row(v.VariantName, "(all)", v.Summary))
				for _, cs := range v.Configs {
					rows = append(rows, row("", cs.EndpointConfigName, cs.Summary))
				}
			}
			c.table([]string{"VARIANT", "CONFIG", "INVOCATIONS", "4XX", "5XX", "MODEL ERRORS", "P50", "P90", "P99"}, rows)
			return nil
		},
	}
	cmd.Flags().DurationVar(&window, "window", time.Minute, "how far back to look (1s to 3h)")
	return cmd
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

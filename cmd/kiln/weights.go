package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln"
)

func newWeightsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "weights ENDPOINT VARIANT=[WEIGHT][:INSTANCES]...",
		Short: "Change variants' weights or instance counts without a new endpoint config",
		Long: `weights is SageMaker's UpdateEndpointWeightsAndCapacities: it sets the weight (share
of traffic relative to the other variants) and/or the instance count of variants of a
running endpoint. Added instances launch first, then traffic moves, then removed
instances stop.`,
		Example: `  kiln weights demo Blue=0.9 Green=0.1
  kiln weights demo AllTraffic=:4        # 4 instances, weight unchanged
  kiln weights demo Blue=1:2 Green=0:1`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := kiln.UpdateWeightsInput{EndpointName: args[0]}
			for _, a := range args[1:] {
				d, err := parseDesired(a)
				if err != nil {
					return err
				}
				in.DesiredWeightsAndCapacities = append(in.DesiredWeightsAndCapacities, d)
			}
			ep, err := c.client().UpdateEndpointWeightsAndCapacities(cmd.Context(), in)
			if err != nil {
				return err
			}
			if c.json() {
				return c.printJSON(ep)
			}
			fmt.Fprintf(c.out, "endpoint/%s updating weights and capacities\n", args[0])
			return nil
		},
	}
	return cmd
}

// parseDesired reads VARIANT=WEIGHT, VARIANT=:COUNT or VARIANT=WEIGHT:COUNT.
func parseDesired(s string) (kiln.DesiredWeightAndCapacity, error) {
	name, spec, ok := strings.Cut(s, "=")
	if !ok || name == "" || spec == "" {
		return kiln.DesiredWeightAndCapacity{}, fmt.Errorf("%q: want VARIANT=WEIGHT, VARIANT=:INSTANCES or VARIANT=WEIGHT:INSTANCES", s)
	}
	d := kiln.DesiredWeightAndCapacity{VariantName: name}
	w, n, hasCount := strings.Cut(spec, ":")
	if w != "" {
		v, err := strconv.ParseFloat(w, 64)
		if err != nil {
			return d, fmt.Errorf("%q: weight %q is not a number", s, w)
		}
		d.DesiredWeight = &v
	}
	if hasCount {
		v, err := strconv.Atoi(n)
		if err != nil {
			return d, fmt.Errorf("%q: instance count %q is not a whole number", s, n)
		}
		d.DesiredInstanceCount = &v
	}
	return d, nil
}

package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln"
)

// kinds maps the names people type to one resource kind.
var kindAliases = map[string]string{
	"endpoint": "endpoints", "endpoints": "endpoints", "ep": "endpoints",
	"model": "models", "models": "models",
	"endpoint-config": "endpoint-configs", "endpoint-configs": "endpoint-configs", "config": "endpoint-configs", "configs": "endpoint-configs",
	"alarm": "alarms", "alarms": "alarms",
}

func kindOf(s string) (string, error) {
	k, ok := kindAliases[s]
	if !ok {
		return "", fmt.Errorf("unknown kind %q: use endpoints, models, endpoint-configs or alarms", s)
	}
	return k, nil
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func newGetCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "get endpoints|models|endpoint-configs|alarms",
		Short: "List resources",
		Example: `  kiln get endpoints
  kiln get models -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := kindOf(args[0])
			if err != nil {
				return err
			}
			ctx, cl := cmd.Context(), c.client()
			switch kind {
			case "endpoints":
				eps, err := cl.ListEndpoints(ctx)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(eps)
				}
				var rows [][]string
				for _, e := range eps {
					rows = append(rows, []string{e.EndpointName, e.EndpointStatus, e.EndpointConfigName, variantsLine(e), deploymentLine(e), age(e.CreationTime)})
				}
				c.table([]string{"NAME", "STATUS", "CONFIG", "VARIANTS", "DEPLOYMENT", "CREATED"}, rows)
			case "models":
				ms, err := cl.ListModels(ctx)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(ms)
				}
				var rows [][]string
				for _, m := range ms {
					img := ""
					if m.PrimaryContainer != nil {
						img = m.PrimaryContainer.Image
					}
					rows = append(rows, []string{m.ModelName, img, age(m.CreationTime)})
				}
				c.table([]string{"NAME", "IMAGE", "CREATED"}, rows)
			case "endpoint-configs":
				cs, err := cl.ListEndpointConfigs(ctx)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(cs)
				}
				var rows [][]string
				for _, ec := range cs {
					var vs []string
					for _, v := range ec.ProductionVariants {
						vs = append(vs, fmt.Sprintf("%s=%s×%d(w%g)", v.VariantName, v.ModelName, v.InitialInstanceCount, v.Weight()))
					}
					rows = append(rows, []string{ec.EndpointConfigName, strings.Join(vs, " "), age(ec.CreationTime)})
				}
				c.table([]string{"NAME", "VARIANTS", "CREATED"}, rows)
			case "alarms":
				as, err := cl.ListAlarms(ctx)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(as)
				}
				c.table([]string{"NAME", "STATE", "METRIC", "CONDITION", "SINCE"}, alarmRows(as))
			}
			return nil
		},
	}
}

func variantsLine(e kiln.Endpoint) string {
	var vs []string
	for _, v := range e.ProductionVariants {
		vs = append(vs, fmt.Sprintf("%s(w%g, %d/%d)", v.VariantName, v.CurrentWeight, v.CurrentInstanceCount, v.DesiredInstanceCount))
	}
	return strings.Join(vs, " ")
}

func deploymentLine(e kiln.Endpoint) string {
	d := e.Deployment
	if d == nil {
		if e.FailureReason != "" {
			return "last update failed"
		}
		if e.EvidenceWarning != "" {
			return "promoted without evidence"
		}
		return "-"
	}
	s := fmt.Sprintf("%s→%s %s", d.Kind, d.EndpointConfigName, d.Phase)
	if g := greenShare(e); d.Kind != kiln.DeployCreate {
		s += fmt.Sprintf(" (%.0f%% on new)", g*100)
	}
	if d.RollbackReason != "" {
		s += " rolling back"
	}
	return s
}

// greenShare is the share of the endpoint's traffic on the deployment's new
// fleets, weighting each variant by its weight.
func greenShare(e kiln.Endpoint) float64 {
	if e.Deployment == nil {
		return 0
	}
	green := map[string]bool{}
	for _, id := range e.Deployment.Green {
		green[id] = true
	}
	weights := map[string]float64{}
	total := 0.0
	for _, v := range e.ProductionVariants {
		weights[v.VariantName] = v.CurrentWeight
		total += v.CurrentWeight
	}
	share := 0.0
	for _, f := range e.Fleets {
		if !green[f.ID] {
			continue
		}
		w := 1.0
		if total > 0 {
			w = weights[f.VariantName] / total
		} else if n := len(e.ProductionVariants); n > 0 {
			w = 1 / float64(n)
		}
		share += w * f.TrafficShare
	}
	return share
}

func alarmRows(as []kiln.Alarm) [][]string {
	var rows [][]string
	for _, a := range as {
		metric := a.MetricName
		if a.Judge != nil {
			metric = "judge:" + a.Judge.EndpointName
		} else if a.Prometheus != nil {
			metric = "promql:" + a.Prometheus.Query
		} else if a.AlarmRule != "" {
			metric = "composite"
		}
		cond := "-"
		if a.AlarmRule != "" {
			cond = a.AlarmRule
		} else if a.Judge == nil {
			cond = fmt.Sprintf("%s %s %s %g for %d of %d×%ds", a.Stat(), opSymbol(a.ComparisonOperator), "", a.Threshold, a.Datapoints(), a.EvaluationPeriods, a.Period)
			cond = strings.Replace(cond, "  ", " ", 1)
		}
		rows = append(rows, []string{a.AlarmName, a.StateValue, metric, cond, age(a.StateTransitionedTimestamp)})
	}
	return rows
}

func opSymbol(op string) string {
	switch op {
	case kiln.GreaterThanThreshold:
		return ">"
	case kiln.GreaterThanOrEqualToThreshold:
		return ">="
	case kiln.LessThanThreshold:
		return "<"
	case kiln.LessThanOrEqualToThreshold:
		return "<="
	}
	return op
}

func newDescribeCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "describe endpoint|model|endpoint-config|alarm NAME",
		Short: "Show one resource in full",
		Example: `  kiln describe endpoint demo
  kiln describe alarm demo-5xx -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := kindOf(args[0])
			if err != nil {
				return err
			}
			ctx, cl, name := cmd.Context(), c.client(), args[1]
			var v any
			switch kind {
			case "endpoints":
				e, err := cl.GetEndpoint(ctx, name)
				if err != nil {
					return err
				}
				if !c.json() {
					insts, _ := cl.EndpointInstances(ctx, name)
					printEndpoint(c, e, insts)
					return nil
				}
				v = e
			case "models":
				v, err = cl.GetModel(ctx, name)
			case "endpoint-configs":
				v, err = cl.GetEndpointConfig(ctx, name)
			case "alarms":
				v, err = cl.GetAlarm(ctx, name)
			}
			if err != nil {
				return err
			}
			// Models, configs and alarms read best as the JSON they are.
			return c.printJSON(v)
		},
	}
}

func printEndpoint(c *cli, e *kiln.Endpoint, insts []kiln.InstanceInfo) {
	w := c.out
	fmt.Fprintf(w, "Name:            %s\n", e.EndpointName)
	fmt.Fprintf(w, "ARN:             %s\n", e.EndpointArn)
	fmt.Fprintf(w, "Status:          %s\n", e.EndpointStatus)
	fmt.Fprintf(w, "Endpoint config: %s\n", e.EndpointConfigName)
	if e.FailureReason != "" {
		fmt.Fprintf(w, "Failure reason:  %s\n", e.FailureReason)
	}
	if e.EvidenceWarning != "" {
		fmt.Fprintf(w, "WARNING:         %s\n", e.EvidenceWarning)
	}
	fmt.Fprintf(w, "Created:         %s\n", age(e.CreationTime))
	fmt.Fprintf(w, "Last modified:   %s\n", age(e.LastModifiedTime))
	fmt.Fprintln(w, "Variants:")
	for _, v := range e.ProductionVariants {
		fmt.Fprintf(w, "  %s: weight %g (desired %g), instances %d (desired %d)\n", v.VariantName, v.CurrentWeight, v.DesiredWeight, v.CurrentInstanceCount, v.DesiredInstanceCount)
		for _, s := range v.VariantStatus {
			fmt.Fprintf(w, "    %s: %s\n", s.Status, s.StatusMessage)
		}
	}
	if d := e.Deployment; d != nil {
		fmt.Fprintf(w, "Deployment:      %s to %s, phase %s, step %d, started %s\n", d.Kind, d.EndpointConfigName, d.Phase, d.Step, age(d.StartTime))
		if d.RollbackReason != "" {
			fmt.Fprintf(w, "  Rolling back:  %s\n", d.RollbackReason)
		}
	}
	fmt.Fprintln(w, "Fleets:")
	rows := [][]string{}
	for _, f := range e.Fleets {
		rows = append(rows, []string{"  " + f.ID, f.VariantName, f.EndpointConfigName, f.ModelName, fmt.Sprintf("%d/%d", f.ActiveInstanceCount, f.InstanceCount), fmt.Sprintf("%.1f%%", f.TrafficShare*100)})
	}
	c.table([]string{"  FLEET", "VARIANT", "CONFIG", "MODEL", "ACTIVE", "SHARE"}, rows)
	if len(insts) > 0 {
		fmt.Fprintln(w, "Instances:")
		sort.Slice(insts, func(i, j int) bool { return insts[i].ID < insts[j].ID })
		rows = rows[:0]
		for _, in := range insts {
			rows = append(rows, []string{"  " + in.ID, in.State, strconv.FormatBool(in.Routable), in.Addr, strconv.Itoa(in.PID), strconv.Itoa(in.Restarts), in.LastError})
		}
		c.table([]string{"  INSTANCE", "STATE", "ROUTABLE", "ADDR", "PID", "RESTARTS", "LAST ERROR"}, rows)
	}
}

func newDeleteCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "delete endpoint|model|endpoint-config|alarm NAME...",
		Short: "Delete resources",
		Example: `  kiln delete endpoint demo
  kiln delete model demo-v1 demo-v2`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := kindOf(args[0])
			if err != nil {
				return err
			}
			ctx, cl := cmd.Context(), c.client()
			for _, name := range args[1:] {
				switch kind {
				case "endpoints":
					err = cl.DeleteEndpoint(ctx, name)
				case "models":
					err = cl.DeleteModel(ctx, name)
				case "endpoint-configs":
					err = cl.DeleteEndpointConfig(ctx, name)
				case "alarms":
					err = cl.DeleteAlarms(ctx, []string{name})
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(c.out, "%s %s deleted\n", strings.TrimSuffix(kind, "s"), name)
			}
			return nil
		},
	}
}

func newLogsCmd(c *cli) *cobra.Command {
	var tail int
	cmd := &cobra.Command{
		Use:   "logs ENDPOINT",
		Short: "Print the output of an endpoint's instances",
		Example: `  kiln logs demo
  kiln logs demo --tail 4096`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := c.client().EndpointLogs(cmd.Context(), args[0], tail)
			if err != nil {
				return err
			}
			fmt.Fprint(c.out, s)
			return nil
		},
	}
	cmd.Flags().IntVar(&tail, "tail", 16<<10, "bytes to show from the end of each instance's log")
	return cmd
}

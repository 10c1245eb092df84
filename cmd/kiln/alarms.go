package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln"
)

func newAlarmsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alarms",
		Short: "Manage alarms (CloudWatch semantics, evaluated every second)",
		Example: `  kiln alarms put demo-5xx --metric Invocation5XXErrors --endpoint demo --variant AllTraffic \
      --statistic Sum --period 1 --evaluation-periods 1 --threshold 0 --comparison GreaterThanThreshold
  kiln alarms get
  kiln alarms history demo-5xx`,
	}
	cmd.AddCommand(newAlarmsPutCmd(c), newAlarmsPutJudgeCmd(c), newAlarmsGetCmd(c), newAlarmsDescribeCmd(c), newAlarmsHistoryCmd(c), newAlarmsSetStateCmd(c), newAlarmsDeleteCmd(c))
	return cmd
}

func newAlarmsPutCmd(c *cli) *cobra.Command {
	var a kiln.Alarm
	var endpoint, variant, config, promURL, promQuery string
	var dims []string
	cmd := &cobra.Command{
		Use:   "put NAME --metric METRIC --statistic STAT --period SECONDS --threshold N --comparison OP [flags]",
		Short: "Create or update an alarm",
		Long: `put creates or updates a metric alarm with CloudWatch's semantics. The metric is one
of Kiln's own (namespace AWS/SageMaker: Invocations, Invocation4XXErrors,
Invocation5XXErrors, InvocationModelErrors, InvocationsPerInstance, ModelLatency,
OverheadLatency) narrowed by --endpoint, --variant and --config, or a PromQL query
against a Prometheus server (--prometheus-url and --promql), or a composite alarm whose
state follows a rule over other alarms (--rule, CloudWatch's AlarmRule).`,
		Example: `  kiln alarms put demo-5xx --metric Invocation5XXErrors --endpoint demo --variant AllTraffic \
      --statistic Sum --period 1 --evaluation-periods 1 --threshold 0 --comparison GreaterThanThreshold
  kiln alarms put demo-p99 --metric ModelLatency --endpoint demo --variant AllTraffic \
      --statistic p99 --period 10 --evaluation-periods 3 --datapoints-to-alarm 2 --threshold 250000 \
      --comparison GreaterThanThreshold --treat-missing-data notBreaching
  kiln alarms put prom-errors --prometheus-url http://127.0.0.1:9090 \
      --promql 'sum(rate(kiln_invocation_errors_total{class="5xx"}[10s]))' \
      --statistic Maximum --period 5 --evaluation-periods 1 --threshold 0.5 --comparison GreaterThanThreshold
  kiln alarms put demo-slow-and-failing --rule 'ALARM(demo-5xx) AND ALARM(demo-p99)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.AlarmName = args[0]
			if kiln.ValidStatistic(a.Statistic) {
				// --statistic takes both kinds; percentiles are extended statistics.
			} else if _, ok := kiln.ParsePercentile(a.Statistic); ok {
				a.ExtendedStatistic, a.Statistic = a.Statistic, ""
			}
			for _, kv := range []struct{ k, v string }{{"EndpointName", endpoint}, {"VariantName", variant}, {"EndpointConfigName", config}} {
				if kv.v != "" {
					a.Dimensions = append(a.Dimensions, kiln.Dimension{Name: kv.k, Value: kv.v})
				}
			}
			for _, d := range dims {
				k, v, ok := strings.Cut(d, "=")
				if !ok {
					return fmt.Errorf("--dimension %q: want Name=Value", d)
				}
				a.Dimensions = append(a.Dimensions, kiln.Dimension{Name: k, Value: v})
			}
			if a.AlarmRule != "" {
				// A composite alarm has no metric: drop the flags' defaults.
				a.Namespace, a.Period, a.EvaluationPeriods = "", 0, 0
			}
			if promURL != "" || promQuery != "" {
				a.Prometheus = &kiln.PrometheusSource{URL: promURL, Query: promQuery}
				a.Namespace = ""
			}
			out, err := c.client().PutAlarm(cmd.Context(), &a)
			if err != nil {
				return inFlagWords(err)
			}
			if c.json() {
				return c.printJSON(out)
			}
			fmt.Fprintf(c.out, "alarm/%s configured (%s)\n", out.AlarmName, out.StateValue)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.MetricName, "metric", "", "metric name, e.g. Invocation5XXErrors")
	f.StringVar(&a.Namespace, "namespace", "AWS/SageMaker", "metric namespace")
	f.StringVar(&endpoint, "endpoint", "", "EndpointName dimension")
	f.StringVar(&variant, "variant", "", "VariantName dimension")
	f.StringVar(&config, "config", "", "EndpointConfigName dimension (watch one fleet only)")
	f.StringArrayVar(&dims, "dimension", nil, "other dimension as Name=Value (repeatable)")
	f.StringVar(&a.Statistic, "statistic", "", "SampleCount, Average, Sum, Minimum, Maximum, or a percentile such as p99")
	f.IntVar(&a.Period, "period", 60, "period in whole seconds (1 or more)")
	f.IntVar(&a.EvaluationPeriods, "evaluation-periods", 1, "periods evaluated (N)")
	f.IntVar(&a.DatapointsToAlarm, "datapoints-to-alarm", 0, "breaching periods out of N that make ALARM (M; default N)")
	f.Float64Var(&a.Threshold, "threshold", 0, "threshold")
	f.StringVar(&a.ComparisonOperator, "comparison", "", "GreaterThanThreshold, GreaterThanOrEqualToThreshold, LessThanThreshold or LessThanOrEqualToThreshold")
	f.StringVar(&a.TreatMissingData, "treat-missing-data", "", "missing (default), ignore, breaching or notBreaching")
	f.StringVar(&a.EvaluateLowSampleCountPercentile, "low-sample-count-percentile", "", "evaluate or ignore")
	f.StringVar(&a.AlarmDescription, "description", "", "description")
	f.StringVar(&promURL, "prometheus-url", "", "take data points from this Prometheus server")
	f.StringVar(&promQuery, "promql", "", "PromQL query returning one series")
	f.StringVar(&a.AlarmRule, "rule", "", "make a composite alarm: a rule such as 'ALARM(a) AND NOT OK(b)'")
	return cmd
}

func newAlarmsGetCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "get",
		Short:   "List alarms and their states",
		Example: "  kiln alarms get",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			as, err := c.client().ListAlarms(cmd.Context())
			if err != nil {
				return err
			}
			if c.json() {
				return c.printJSON(as)
			}
			c.table([]string{"NAME", "STATE", "METRIC", "CONDITION", "SINCE"}, alarmRows(as))
			return nil
		},
	}
}

func newAlarmsDescribeCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "describe NAME",
		Short:   "Show an alarm in full, with its state and reason",
		Example: "  kiln alarms describe demo-5xx",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := c.client().GetAlarm(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.printJSON(a)
		},
	}
}

func newAlarmsHistoryCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "history NAME",
		Short:   "Show an alarm's history of state changes and updates",
		Example: "  kiln alarms history demo-5xx",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			items, err := c.client().AlarmHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.json() {
				return c.printJSON(items)
			}
			var rows [][]string
			for _, it := range items {
				rows = append(rows, []string{it.Timestamp.Local().Format("2006-01-02 15:04:05.000"), it.HistoryItemType, it.HistorySummary})
			}
			c.table([]string{"TIME", "TYPE", "SUMMARY"}, rows)
			return nil
		},
	}
}

func newAlarmsSetStateCmd(c *cli) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     "set-state NAME OK|ALARM|INSUFFICIENT_DATA --reason TEXT",
		Short:   "Set an alarm's state until its next evaluation (for testing rollbacks)",
		Example: `  kiln alarms set-state demo-5xx ALARM --reason "testing the rollback"`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.client().SetAlarmState(cmd.Context(), args[0], args[1], reason, ""); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "alarm/%s set to %s\n", args[0], args[1])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "Set by an operator", "why")
	return cmd
}

func newAlarmsDeleteCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME...",
		Short:   "Delete alarms",
		Example: "  kiln alarms delete demo-5xx",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.client().DeleteAlarms(cmd.Context(), args); err != nil {
				return err
			}
			for _, n := range args {
				fmt.Fprintf(c.out, "alarm/%s deleted\n", n)
			}
			return nil
		},
	}
}

package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln"
)

// judgeFlags are put-judge's flags.
type judgeFlags struct {
	endpoint     string
	alpha        float64
	tolerance    float64
	metrics      string
	minRequests  int
	insufficient string
	early        bool
	description  string
}

// judgeAlarm builds the alarm put-judge sends. The server validates it.
func judgeAlarm(name string, f judgeFlags) *kiln.Alarm {
	tol := f.tolerance
	spec := &kiln.JudgeSpec{
		EndpointName:     f.endpoint,
		Alpha:            f.alpha,
		Tolerance:        &tol,
		MinRequests:      f.minRequests,
		InsufficientData: f.insufficient,
		EarlyPromotion:   f.early,
	}
	for _, m := range strings.Split(f.metrics, ",") {
		if m = strings.TrimSpace(m); m != "" {
			spec.Metrics = append(spec.Metrics, m)
		}
	}
	return &kiln.Alarm{AlarmName: name, AlarmDescription: f.description, Judge: spec}
}

func newAlarmsPutJudgeCmd(c *cli) *cobra.Command {
	var f judgeFlags
	cmd := &cobra.Command{
		Use:   "put-judge NAME --endpoint ENDPOINT [--alpha 0.01] [--tolerance 0.1] [--metrics errors,latency]",
		Short: "Create or update a judge alarm: is the new fleet worse than the old one?",
		Long: `put-judge creates or updates a judge alarm. During a blue/green deployment of the
endpoint, while the old and the new fleet both take traffic (canary and linear
bakes), the judge compares them after every request with anytime-valid sequential
tests: it goes to ALARM once the new fleet is worse than the old one with confidence
1-alpha, and the probability that it ever does so for a new fleet that is not worse
stays below alpha however long the deployment runs. Differences within the
tolerance (0.1: an error rate up to 1.1 times the old one, latencies up to 10%
longer) never count. The reason shows the counts, the estimate and the e-value.

List the alarm in the deployment's AutoRollbackConfiguration like any other. It
says OK only once each fleet has answered --min-requests requests side by side, and
stays INSUFFICIENT_DATA before; it goes to ALARM as soon as the evidence shows a
regression, with fewer requests. --insufficient-data wait (the default) makes a bake
wait for a verdict, up to MaximumExecutionTimeoutInSeconds, pass lets it end. --early-promotion ends a bake early once the judge has shown, with the same
confidence, that the new fleet is not worse beyond the tolerance.`,
		Example: `  kiln alarms put-judge demo-judge --endpoint demo
  kiln alarms put-judge demo-judge --endpoint demo --alpha 0.001 --tolerance 0.2 --metrics errors
  kiln alarms put-judge demo-judge --endpoint demo --early-promotion --insufficient-data pass`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.endpoint == "" {
				return fmt.Errorf("--endpoint is required")
			}
			out, err := c.client().PutAlarm(cmd.Context(), judgeAlarm(args[0], f))
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
	fl := cmd.Flags()
	fl.StringVar(&f.endpoint, "endpoint", "", "endpoint whose deployments the judge watches (required)")
	fl.Float64Var(&f.alpha, "alpha", kiln.DefaultJudgeAlpha, "bound on the probability of a false alarm over a deployment")
	fl.Float64Var(&f.tolerance, "tolerance", kiln.DefaultJudgeTolerance, "smallest relative regression that matters (0.1 = 10%)")
	fl.StringVar(&f.metrics, "metrics", "errors,latency", "what to judge: errors, latency, or both")
	fl.IntVar(&f.minRequests, "min-requests", kiln.DefaultJudgeMinRequests, "requests each fleet must answer side by side before the judge says OK (ALARM needs no minimum)")
	fl.StringVar(&f.insufficient, "insufficient-data", kiln.JudgeWait, "when a bake ends without a verdict: wait or pass")
	fl.BoolVar(&f.early, "early-promotion", false, "end a bake early once the new fleet is shown not worse")
	fl.StringVar(&f.description, "description", "", "description")
	return cmd
}

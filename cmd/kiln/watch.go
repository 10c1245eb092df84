package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kiln-serve/kiln"
)

// Exit statuses of kiln. `kiln deploy --watch` and `kiln status --watch`
// end with the outcome of the deployment they followed, so that a pipeline
// can act on it; README.md and docs/deployments.md list them.
const (
	exitCompleted   = 0   // the endpoint is in service on the new endpoint config
	exitGeneric     = 1   // the command could not do its work (server unreachable, request refused...)
	exitUsage       = 2   // unknown command, bad flag or wrong arguments
	exitAlarm       = 3   // rolled back because a rollback alarm (a judge included) was in ALARM
	exitOperator    = 4   // stopped, or rolled back, by an operator
	exitFailed      = 5   // failed: new instances could not launch, creation failed, or the rollback failed too
	exitTimedOut    = 6   // rolled back at MaximumExecutionTimeoutInSeconds
	exitNoEvidence  = 7   // rolled back: a bake's MinRequestsPerBake did not come in time
	exitBlind       = 8   // completed, but a bake saw no request answered by the new fleet
	exitInterrupted = 130 // the watch was interrupted (Ctrl-C); the deployment goes on
)

// watchPoll is how often a watch reads the endpoint.
const watchPoll = 500 * time.Millisecond

// outcome is how a deployment ended, as the exit status tells it.
type outcome struct {
	code int
	// what ended the deployment, in a few words, and the full reason
	what, reason string
}

// outcomeOf maps the event that ended a deployment to an exit status.
func outcomeOf(ev kiln.HistoryEvent) outcome {
	o := outcome{reason: ev.Message}
	switch ev.Phase {
	case kiln.PhaseCompleted:
		o.code, o.what = exitCompleted, "completed"
	case kiln.PhaseRolledBack:
		switch ev.Cause {
		case kiln.CauseAlarm:
			o.code, o.what = exitAlarm, "was rolled back by a rollback alarm"
		case kiln.CauseOperator:
			o.code, o.what = exitOperator, "was stopped by an operator"
		case kiln.CauseTimeout:
			o.code, o.what = exitTimedOut, "timed out"
		case kiln.CauseNoEvidence:
			o.code, o.what = exitNoEvidence, "was rolled back: the new fleet did not answer the requests its bakes needed"
		case kiln.CauseLaunchFailed:
			o.code, o.what = exitFailed, "failed: new instances could not launch"
		default:
			o.code, o.what = exitFailed, "was rolled back"
		}
	case kiln.PhaseRollbackFailed:
		o.code, o.what = exitFailed, "failed, and so did its rollback"
	default: // kiln.PhaseFailed and any phase this client does not know
		o.code, o.what = exitFailed, "failed"
	}
	return o
}

// terminal reports whether a history event ends a deployment.
func terminal(phase string) bool {
	switch phase {
	case kiln.PhaseCompleted, kiln.PhaseRolledBack, kiln.PhaseFailed, kiln.PhaseRollbackFailed:
		return true
	}
	return false
}

// findOutcome reads how deployment id ended (the last deployment to end if
// id is ""). The controller appends the history just after it writes the
// endpoint, so the event may lag the endpoint by a moment: it looks again
// a few times before it settles for what the endpoint record says.
func findOutcome(ctx context.Context, c *cli, name, id string, ep *kiln.Endpoint) (outcome, error) {
	cl := c.client()
	for try := 0; ; try++ {
		evs, err := cl.EndpointHistory(ctx, name)
		if err != nil {
			return outcome{}, fmt.Errorf("read the history of endpoint %s: %w", name, err)
		}
		for i := len(evs) - 1; i >= 0; i-- {
			if terminal(evs[i].Phase) && (id == "" || evs[i].DeploymentID == id) {
				return blind(outcomeOf(evs[i]), ep), nil
			}
		}
		if try == 10 {
			break
		}
		select {
		case <-ctx.Done():
			return outcome{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	switch {
	case ep.EndpointStatus == kiln.StatusFailed || ep.EndpointStatus == kiln.StatusUpdateRollbackFailed:
		return outcome{code: exitFailed, what: "failed", reason: ep.FailureReason}, nil
	case ep.FailureReason != "":
		return outcome{code: exitFailed, what: "was rolled back", reason: ep.FailureReason}, nil
	}
	return blind(outcome{code: exitCompleted, what: "completed", reason: fmt.Sprintf("Endpoint %s is %s on endpoint config %q.", name, ep.EndpointStatus, ep.EndpointConfigName)}, ep), nil
}

// blind turns a completion that a bake saw no request of into its own
// outcome: promoted, but on no evidence that the new fleet works.
func blind(o outcome, ep *kiln.Endpoint) outcome {
	if o.code == exitCompleted && ep != nil && ep.EvidenceWarning != "" {
		o.code, o.what, o.reason = exitBlind, "completed without evidence", ep.EvidenceWarning
	}
	return o
}

// watchStatus prints the status once, or, with watch, follows the
// deployment in progress (deployment id, or whichever runs) until it ends
// and returns its outcome as the exit status. On a terminal the view is
// redrawn in place; otherwise a line is printed for each change.
func watchStatus(ctx context.Context, c *cli, name string, watch bool, id string) error {
	cl := c.client()
	var view watchView
	switch {
	case c.json():
		view = &jsonView{c: c}
	case !watch:
		view = &onceView{w: c.out}
	case c.terminal():
		view = &ttyView{w: c.out, width: c.termWidth()}
	default:
		view = &lineView{w: c.out, start: time.Now()}
	}
	// Ctrl-C ends the watch, not the deployment; it may come during a
	// request as well as between two.
	interrupted := func() error {
		view.end(outcome{})
		return withStatus(fmt.Errorf("stopped watching endpoint %s; its deployment goes on: %s status %s --watch", name, selfCommand(), name), exitInterrupted)
	}
	waited := 0
	for {
		ep, err := cl.GetEndpoint(ctx, name)
		if err != nil {
			if watch && ctx.Err() != nil {
				return interrupted()
			}
			return err
		}
		if id == "" && ep.Deployment != nil {
			id = ep.Deployment.ID
		}
		st := status{ep: ep, alarms: map[string]kiln.AlarmState{}, now: time.Now()}
		st.alarmNames = ep.LastDeploymentConfig.AlarmNames()
		if ep.Deployment != nil {
			st.alarmNames = ep.Deployment.DeploymentConfig.AlarmNames()
		}
		for _, n := range st.alarmNames {
			if a, err := cl.GetAlarm(ctx, n); err == nil {
				st.alarms[n] = a.AlarmState
			}
		}
		if err := view.show(st); err != nil {
			return err
		}
		if !watch {
			return nil
		}
		// Over once the deployment followed is gone (or another runs). An
		// endpoint just created may show no deployment for a moment.
		over := ep.Deployment == nil || (id != "" && ep.Deployment.ID != id)
		if over && id == "" && ep.EndpointStatus == kiln.StatusCreating && waited < 20 {
			over = false
			waited++
		}
		if over {
			o, err := findOutcome(ctx, c, name, id, ep)
			if err != nil {
				if ctx.Err() != nil {
					return interrupted()
				}
				return err
			}
			view.end(o)
			if o.code == exitCompleted {
				return nil
			}
			return withStatus(fmt.Errorf("endpoint %s: the deployment %s (exit status %d)", name, o.what, o.code), o.code)
		}
		select {
		case <-ctx.Done():
			return interrupted()
		case <-time.After(watchPoll):
		}
	}
}

// status is what a watch shows at one instant.
type status struct {
	ep         *kiln.Endpoint
	alarmNames []string
	alarms     map[string]kiln.AlarmState
	now        time.Time
}

// watchView draws a watch: show for each reading, end once at the end
// (with the zero outcome when interrupted).
type watchView interface {
	show(status) error
	end(outcome)
}

// onceView is `kiln status`: the full view, reasons in full.
type onceView struct{ w io.Writer }

func (v *onceView) show(st status) error {
	_, err := io.WriteString(v.w, strings.Join(renderStatus(st, 0), "\n")+"\n")
	return err
}
func (v *onceView) end(outcome) {}

// jsonView prints the endpoint's record each time it changes.
type jsonView struct {
	c    *cli
	last string
}

func (v *jsonView) show(st status) error {
	b, err := jsonText(st.ep)
	if err != nil || b == v.last {
		return err
	}
	v.last = b
	_, err = io.WriteString(v.c.out, b)
	return err
}
func (v *jsonView) end(outcome) {}

// ttyView redraws the view in place: the cursor goes back up over the last
// frame, which is cleared. Lines are cut to the terminal's width, so that
// none wraps and the count of lines to go back up over is exact.
type ttyView struct {
	w     io.Writer
	width int
	last  []string
}

func (v *ttyView) show(st status) error {
	lines := renderStatus(st, v.width-1)
	if equalLines(lines, v.last) {
		return nil
	}
	var b strings.Builder
	if len(v.last) > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\r\x1b[J", len(v.last))
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	v.last = lines
	_, err := io.WriteString(v.w, b.String())
	return err
}

func (v *ttyView) end(o outcome) { endLine(v.w, o) }

// lineView prints one line for each thing that changed, for logs and
// pipelines: no escape sequences, nothing repeated.
type lineView struct {
	w     io.Writer
	start time.Time
	facts map[string]string // what was last printed, by key
}

func (v *lineView) show(st status) error {
	if v.facts == nil {
		v.facts = map[string]string{}
	}
	elapsed := st.now.Sub(v.start).Round(time.Second)
	var b strings.Builder
	for _, f := range statusFacts(st) {
		if v.facts[f.key] == f.value {
			continue
		}
		v.facts[f.key] = f.value
		fmt.Fprintf(&b, "[+%v] %s: %s\n", elapsed, f.key, f.value)
	}
	_, err := io.WriteString(v.w, b.String())
	return err
}

func (v *lineView) end(o outcome) { endLine(v.w, o) }

// endLine ends a watch with the outcome and its reason in full.
func endLine(w io.Writer, o outcome) {
	if o.what == "" {
		return
	}
	fmt.Fprintf(w, "Deployment %s. %s\n", o.what, o.reason)
}

// fact is one thing a watch shows, under a stable key.
type fact struct{ key, value string }

// reasonCut is how much of a reason a line of the live view shows; the end
// of the watch prints the whole of it.
const reasonCut = 160

// statusFacts lists what the line view reports changes of: no countdowns,
// reasons cut short, and not the last update's failure, which the end of
// the watch reports in full.
func statusFacts(st status) []fact {
	ep := st.ep
	fs := []fact{{"endpoint " + ep.EndpointName, fmt.Sprintf("%s on %s", ep.EndpointStatus, ep.EndpointConfigName)}}
	if d := ep.Deployment; d != nil {
		v := fmt.Sprintf("%s to %s: %s, step %d", d.Kind, d.EndpointConfigName, d.Phase, d.Step)
		if d.Kind != kiln.DeployCreate {
			v += fmt.Sprintf(", %.0f%% of traffic on the new fleet", greenShare(*ep)*100)
		}
		if d.RollbackReason != "" {
			v += ": rolling back: " + cut(d.RollbackReason, reasonCut)
		}
		fs = append(fs, fact{"deployment " + d.ID, v})
	}
	for _, v := range ep.ProductionVariants {
		for _, s := range v.VariantStatus {
			fs = append(fs, fact{"variant " + v.VariantName, s.Status + ": " + cut(s.StatusMessage, reasonCut)})
		}
	}
	for _, n := range st.alarmNames {
		a, ok := st.alarms[n]
		val := "(missing)"
		if ok {
			val = a.StateValue + " — " + cut(a.StateReason, reasonCut)
		}
		fs = append(fs, fact{"alarm " + n, val})
	}
	return fs
}

// cut shortens s to at most n characters, marking the cut with "…"; n <= 0
// leaves it whole.
func cut(s string, n int) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
	r := []rune(s)
	if n <= 0 || len(r) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	return string(r[:n-1]) + "…"
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// exitStatus is the exit status err asks for.
func exitStatus(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return int(ee)
	}
	return exitGeneric
}

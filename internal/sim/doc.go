// Package sim simulates deployments to compare ways of deciding rollbacks:
// the judge (package judge) against threshold alarms on 1-minute and
// 1-second periods.
//
// A simulated deployment is the real thing but for the traffic and the
// clock. The endpoint records come from deploy.StartCreate,
// deploy.StartUpdate and deploy.Next, applied one transition at a time as
// the controller applies them; every request is recorded into a
// metrics.Store and into judge.Judges as the gateway would record it; an
// alarm.Engine evaluates the alarms (threshold alarms on the metrics
// store's data points through alarm.Evaluate, judge alarms through
// judge.Judges) when the engine would. Requests are synthetic: each fleet
// fails a request with a fixed probability and answers in a lognormal time.
// The clock is fake and advances a second at a time; nothing runs in the
// background and nothing opens a socket, so a Scenario always gives the same
// outcomes.
//
// Every method runs the same update on the same requests: one copy of the
// endpoint record per method, each watching its own alarms. The copies agree
// until one rolls back; that one's outcome is then decided and it leaves,
// while the others carry on. Run checks that the copies still forwarding
// route alike.
//
// Experiment runs the plan of docs/judge.md, and cmd/kiln-sim prints its
// tables:
//
//	go run ./internal/sim/cmd/kiln-sim
package sim

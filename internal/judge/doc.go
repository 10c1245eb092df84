// Package judge decides whether the new fleet of a deployment is worse than
// the old one, from every request both serve, with anytime-valid sequential
// tests: tests that may be looked at after every request and still go to
// ALARM by mistake with probability at most α over the whole deployment.
//
// Threshold alarms answer the wrong question during a bake. "5xx > 0"
// rolls back on one unlucky request; "5xx rate > 1%" misses a model that
// doubles a 0.3% error rate; an alarm already firing on the old fleet
// blocks the deployment that would fix it. During a canary or linear bake
// both fleets serve the same traffic at the same time, so the judge asks:
// is green (the new fleet) worse than blue (the old one), and how sure are
// we?
//
// # Errors
//
// Given the share s of traffic the router sends to green, an error comes
// from green with probability s·r/(s·r + 1 − s), where r is the ratio of
// green's error rate to blue's. The judge tests r ≤ 1+tolerance with a
// mixture martingale over the origins of the errors (see OriginTest),
// after Lindon and Malek, "Anytime-Valid Inference for Multinomial Count
// Data" (NeurIPS 2022). Each error's likelihood ratio uses the share the
// request was routed with, so the product stays a test martingale when the
// share changes at every linear step, and anything that moves both fleets'
// error rates alike (a bad client, a downstream outage) leaves it alone.
//
// # Latency
//
// Latency is judged the same way, on events "the request took longer than
// a threshold" (Howard and Ramdas, "Sequential estimation of quantiles
// with applications to A/B-testing and best-arm identification",
// Bernoulli 2022, build their quantile confidence sequences on the same
// fact: 1{X > c} is a Bernoulli draw with probability 1 − F(c)). The
// thresholds are the old fleet's running 50th, 90th and 99th percentiles,
// computed from requests recorded before the one judged. A blue request is
// an event when its latency exceeds the threshold, a green one when its
// latency divided by 1+tolerance does. If green's latency, so scaled, is
// not stochastically larger than blue's, a green request exceeds any
// threshold fixed in advance no more often than a blue one, and the origin
// of events is again a Bernoulli draw with probability at most the share:
// the same test with r ≤ 1, one per level, averaged. The median level
// catches a fleet that is slower across the board quickly; the 99th
// percentile level catches a tail that grew, more slowly since only 1% of
// requests are events there. Like Lindon, Sanden and Shirikian, "Rapid
// Regression Detection in Software Deployments through Sequential Testing"
// (KDD 2022), the judge tests stochastic order between the canary and the
// control sequentially; testing it through exceedances of thresholds keeps
// the guarantee for any share schedule and any drift of the latencies that
// both fleets share. Latency includes failed requests: a timeout is slow,
// and a failure is judged as an error too.
//
// # Verdicts
//
// The e-value against "green is not worse" is the mean of the errors and
// latency e-values (a mean of e-processes is an e-process, so one α covers
// both). The alarm is ALARM once it has reached 1/α, and stays there until
// the evidence is reset; OK once both fleets have answered MinRequests
// requests side by side; INSUFFICIENT_DATA before that. The reverse tests
// (green is worse beyond the tolerance) reaching 1/α, every one of them,
// shows green is not worse with the same confidence: with EarlyPromotion a
// bake may end early (Verdict.Promote). The reason gives the counts, the
// rate ratio, the latency thresholds and the e-values; the reason data
// gives them as JSON.
//
// # Wiring
//
// Judges is the alarm engine's JudgeSource. The server hands each fleet's
// Recorder to the gateway beside the metrics recorder, with the share of the
// fleet's variant that goes to the new fleet, and calls Reset when a
// deployment starts and when it ends. Record takes one lock per endpoint
// and does not allocate; requests routed with a share of 0 or 1 only count.
package judge

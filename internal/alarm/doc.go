// Package alarm evaluates metric alarms with CloudWatch's semantics.
//
// Evaluate is a pure function: an alarm definition, the data points of its
// evaluation range and the time in, the new state with a CloudWatch-style
// reason and reason data out. It implements M out of N (DatapointsToAlarm
// of EvaluationPeriods) over a range of N+2 periods, the four comparison
// operators, the four ways of treating missing data (including CloudWatch's
// rule against premature ALARMs on sparse data), and
// EvaluateLowSampleCountPercentile. The tables of the CloudWatch user
// guide's "Configuring how CloudWatch alarms treat missing data" are its
// tests.
//
// The Engine runs Evaluate for every alarm on a ticker, every second by
// default: alarms with periods under a minute on every tick, so that an
// alarm on 1-second periods sees a breach within one or two seconds, and
// longer ones when a period completes. It keeps the current states in memory,
// where the deployment controller reads them with State, and writes every
// state change with its history item through a Repo. Data points come from a
// Source: Kiln's own metrics, or a Prometheus server (NewPrometheusSource)
// for alarms with a PromQL query. Judge alarms, which compare two fleets
// statistically, are left to a JudgeSource.
//
// The package does not know the metrics store or the alarm store; the
// server plugs them in as a Source and a Repo.
package alarm

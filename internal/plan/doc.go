// Package plan turns a deployment policy and fleet sizes into the list of
// steps a deployment walks through: how many instances of the new (green)
// fleet take traffic at each step, what share of the variant's traffic they
// get, how many instances of the old (blue) fleet have been retired, and how
// long to bake before the next step. It is pure arithmetic: no I/O, no clock.
//
// # Blue/green
//
// The whole green fleet is provisioned beside blue before any step. Blue
// keeps every instance running and routable until it is terminated after
// the final step, so a rollback is one routing swap. The share of green is
// its active capacity over its total capacity: a canary of 1 of 4 green
// instances gets 25% of the variant's traffic and blue the other 75%.
//
//   - ALL_AT_ONCE: one step with all of green active ("all"), baked for
//     WaitIntervalInSeconds.
//   - CANARY: one step with the canary active ("canary"), baked for
//     WaitIntervalInSeconds; the final step then moves the rest.
//   - LINEAR: steps of LinearStepSize instances ("linear"), each baked for
//     WaitIntervalInSeconds; the last step may be smaller so that the plan
//     ends at exactly 100%.
//   - Every plan ends with the "final" step: all of green active, share 1,
//     baked for TerminationWaitInSeconds (alarms still watched), after which
//     blue is terminated.
//
// No DeploymentConfig (or one without BlueGreenUpdatePolicy) means
// ALL_AT_ONCE with no bake.
//
// Sizes: CAPACITY_PERCENT p of a fleet of n instances is
// max(1, floor(p×n/100)) instances, so 33% of 3 is 1 and 50% of 3 is 1; on
// a fleet of one instance any percentage is that instance. INSTANCE_COUNT
// must not exceed half of the green fleet for CanarySize and LinearStepSize
// (a kiln.EINVALID error names the field and the fleet size otherwise).
//
// # Rolling
//
// A rolling update replaces the old fleet batch by batch without a second
// full fleet. MaximumBatchSize (5–50% of the new fleet; INSTANCE_COUNT at
// most half of it) sets the batch. Each batch is two steps: "batch"
// provisions the batch's new instances and gives them traffic in proportion
// to the instance counts, baked for WaitIntervalInSeconds; "retire" then
// retires the same share of old instances. When the old and new fleets
// differ in size, old instances are retired in proportion, rounding so that
// old capacity is never retired ahead of the new capacity that replaces it.
//
// On rollback the old fleet is restored in batches of
// RollbackMaximumBatchSize (all at once when absent): each batch provisions
// old instances, gives them traffic and retires the matching share of new
// instances (RollbackStep).
package plan

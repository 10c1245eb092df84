// Package deploy is the deployment controller: it creates endpoints, runs
// blue/green and rolling updates with bakes watched by alarms, applies
// UpdateEndpointWeightsAndCapacities, and rolls back.
//
// It is built like etcd's raft: a pure state machine, Next, takes the
// endpoint record, what is observed of its fleets and alarms, and the time,
// and returns the next record, its history events and when to look again.
// The Controller is the driver: it reads a record, calls Next, writes the
// result with compare-and-swap and appends the history. The record is the
// only state and the only action — the fleet manager runs exactly the fleets
// it lists and the gateway routes by its weights and shares — so a
// controller killed at any instant carries on from the record on restart.
// The Start functions and RequestStop are the pure entry points the API
// layer calls to begin or stop something.
//
// # Routing state
//
// Each variant has one fleet, or two during an update: blue (the live
// config) and green (the new one). A fleet runs InstanceCount instances; the
// lowest-numbered ActiveInstanceCount of them take traffic; TrafficShare is
// its share of the variant's traffic (a variant's shares add up to 1). The
// variants' CurrentWeight split the endpoint's traffic. Every step moves
// all variants together, in this order, one write at a time: launch
// instances (InstanceCount up), wait until they pass their health checks,
// move traffic (ActiveInstanceCount, TrafficShare, CurrentWeight), bake,
// and only then stop instances that no longer get traffic (InstanceCount
// down, or the fleet removed).
//
// # Blue/green update
//
//  1. Provisioning: the whole green fleet is launched beside blue. If it
//     cannot launch (the fleet manager reports a failed launch), the update
//     fails: green is removed, blue never stopped serving, and
//     FailureReason says why.
//  2. Traffic steps (see package plan): ALL_AT_ONCE, CANARY or LINEAR; the
//     share of green is its active capacity over its total capacity. Each
//     step is ActivatingTraffic, then Baking for WaitIntervalInSeconds.
//  3. The final bake: all traffic on green, blue still running, for
//     TerminationWaitInSeconds.
//  4. Terminating: blue is removed. The endpoint is InService on the new
//     config, with LastDeploymentConfig set and FailureReason cleared.
//
// The rollback alarms are watched at every look until blue is terminated,
// bakes included, the final one too. An alarm in ALARM rolls back; so do
// exceeding MaximumExecutionTimeoutInSeconds (default 28800), a failed
// launch of green, and an operator's stop (RequestStop). A rollback gives
// all traffic back to blue in one write — blue kept every instance running
// and routable — then removes green in the next. EndpointStatus shows
// Updating throughout, rollback included; afterwards the endpoint is
// InService on the old config, with FailureReason naming the cause, e.g.
// `Update rolled back because alarm "x" is in ALARM: <reason>`. An alarm
// in ALARM before any traffic moved holds the traffic back for up to
// PreTrafficAlarmWait (the alarm of an update rolled back a moment ago still
// holds its errors), then fails the update the same way, with a
// FailureReason that says so.
//
// # Evidence
//
// A bake shows something only if the new fleets answered requests during
// it. Observation.Answered counts them; a bake of some length that ends
// without any is recorded in Deployment.BlindBakes and a history event, and
// the completed update leaves Endpoint.EvidenceWarning. With
// Deployment.MinRequestsPerBake, a bake whose time is up waits for that
// many requests, as a judge's InsufficientData "wait" does, and the update
// rolls back past EvidenceTimeoutInSeconds or the execution timeout.
//
// # Rolling update
//
// Batch by batch (package plan): launch a batch of new instances, wait for
// them, give them traffic in proportion to the instance counts, bake
// WaitIntervalInSeconds, then retire the same share of old instances. A
// rollback restores the old fleet RollbackMaximumBatchSize at a time (all at
// once when absent): launch old instances, wait, give them traffic, retire
// the matching new ones; while the old fleet is still whole it is a single
// swap. If the old instances cannot launch, the endpoint is
// UpdateRollbackFailed and keeps serving with what runs.
//
// # Kiln rules
//
//   - Every variant shifts in lockstep. CANARY, LINEAR and rolling updates
//     need the new config to have the live config's variant names;
//     ALL_AT_ONCE may add variants (weight 0 until traffic moves) or remove
//     them (weight 0 from then on). A variant with fewer steps than another
//     holds its last traffic step; in a rolling update it retires its last
//     old instances with the others, at the last step, so that every
//     variant can roll back until then.
//   - Variant weights move to the new config's when all the traffic of
//     every variant has moved; a rollback restores the old ones in the same
//     write that gives the traffic back.
//   - RequestStop rolls the update back (FailureReason "Update rolled back
//     because it was stopped by operator."). It is refused for an endpoint
//     being created (delete it instead), for an endpoint with no update in
//     progress (update it to the earlier config instead), and once blue is
//     being terminated.
//   - A second update while one runs is refused: `Cannot update in-progress
//     endpoint "<arn>".` (kiln.ECONFLICT). Failed and UpdateRollbackFailed
//     endpoints can only be deleted.
//   - Creating an endpoint launches its fleets in full; it is InService when
//     every instance is healthy, Failed (with its instances stopped) if one
//     cannot launch or they are not all healthy within 28800 seconds.
//   - UpdateEndpointWeightsAndCapacities launches added instances, then
//     moves weights and traffic, then stops removed instances; a failed
//     launch puts the old weights and counts back, InService with
//     FailureReason set.
//   - An alarm deleted during an update counts as not in ALARM.
package deploy

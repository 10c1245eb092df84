// Package fleet runs the instances of every endpoint's fleets as local
// processes (Kiln's `process` runtime) and reports their state.
//
// A Manager is told the desired fleets with Sync and makes it so in its own
// goroutines: it starts each missing instance from the model's command line
// (split into words, no shell) on a loopback port of its choosing, checks
// GET /ping until the instance is healthy, and only then reports it
// Routable. An instance that crashes or fails a ping after being healthy
// stops being routable at once and is replaced by a new incarnation with
// exponential backoff. A new instance that is not healthy within the startup
// window fails its launch, which marks its fleet LaunchFailed with a reason
// the deployment controller can show. An instance that is no longer wanted
// is drained through the Drainer (the gateway), then stopped with SIGTERM
// and, after StopTimeout, SIGKILL to its whole process group.
//
// The manager never reads the store: the server calls Sync on every change
// and reads Instances and FleetStatus back. OnChange tells it when to look.
//
// Processes are started from one goroutine locked to its OS thread, with
// Pdeathsig set, so a Kiln killed with SIGKILL takes its instances with it;
// and each instance's PID is recorded under RunDir, so that a Kiln started
// again kills anything a previous run left behind (its workers, say) before
// it starts new instances.
//
// What an instance may run is a CommandPolicy, checked when a model is
// created (CheckImage) and again at every launch; its environment is built
// from a fixed list (env.go), never Kiln's whole environment; and when
// Kiln runs as root, an InstanceUser runs it, so that it can reach neither
// Kiln's files nor its process.
package fleet

package deploy

import (
	"context"
	"errors"
	"time"

	"github.com/kiln-serve/kiln"
)

// FleetStatus is what the fleet manager reports about one fleet's instances.
type FleetStatus struct {
	// Healthy is how many instances pass their health check now.
	Healthy int
	// Starting is how many instances run but have not passed it yet.
	Starting int
	// LaunchFailed reports that an instance could not become healthy
	// within its startup window; Reason says why.
	LaunchFailed bool
	Reason       string
}

// Observation is what the controller sees of the world beside the endpoint
// record when it calls Next.
type Observation struct {
	// Fleets holds the status of the endpoint's fleets by fleet ID. A fleet
	// missing from the map has no healthy instance and no failed launch.
	Fleets map[string]FleetStatus
	// Alarms holds the state of the deployment's rollback alarms by name.
	// An alarm missing from the map (deleted since the update started) is
	// treated as not in ALARM.
	Alarms map[string]kiln.AlarmState
	// Judges holds what the deployment's judge alarms say beyond their
	// states, by alarm name: wait for evidence, or end the bake early. An
	// alarm missing from it counts by its state only.
	Judges map[string]JudgeVerdict
	// Answered holds, by fleet ID, how many requests each new fleet of a
	// bake answered since the bake began (the deployment's PhaseStartTime).
	// nil means not counted: bakes then neither wait for evidence nor
	// report its absence.
	Answered map[string]int
}

// ErrConflict is what Store.PutEndpoint returns (possibly wrapped) when the
// record's revision is no longer the one it was read at.
var ErrConflict = errors.New("endpoint record changed since it was read")

// Store holds the endpoint records, revisioned for compare-and-swap.
type Store interface {
	// GetEndpoint returns the record and its revision; an error whose
	// kiln.ErrorCode is kiln.ENOTFOUND when there is no such endpoint.
	GetEndpoint(ctx context.Context, name string) (kiln.Endpoint, int64, error)
	// PutEndpoint writes the record if its revision is still ifRevision and
	// returns the new revision; an error wrapping ErrConflict otherwise.
	PutEndpoint(ctx context.Context, ep kiln.Endpoint, ifRevision int64) (int64, error)
	// AppendHistory keeps the transitions of an endpoint's deployments.
	AppendHistory(ctx context.Context, endpoint string, ev []kiln.HistoryEvent) error
	// ListEndpoints returns every endpoint record.
	ListEndpoints(ctx context.Context) ([]kiln.Endpoint, error)
}

// Fleets reports the health of the instances the fleet manager runs.
type Fleets interface {
	FleetStatus(endpoint, fleetID string) FleetStatus
}

// Requests counts the requests the gateway routed to a fleet.
type Requests interface {
	// Answered returns how many requests fleet f of the endpoint answered
	// (successfully or not) from since on.
	Answered(endpoint string, f kiln.Fleet, since time.Time) int
}

// Alarms reports the current state of an alarm, false if it does not exist.
type Alarms interface {
	State(name string) (kiln.AlarmState, bool)
}

package kiln

import "context"

// Lists are read a page at a time, so that the cost of a list is that of
// the page, not of every record: a client asks for the records after a name,
// at most a limit of them, and learns the name to continue after.
const (
	// DefaultPageLimit is how many records a page of /v1 holds when the
	// client does not say.
	DefaultPageLimit = 100
	// MaxPageLimit is the most a client may ask for in one page of /v1.
	MaxPageLimit = 1000
)

// Kinds of records, as Lister.Names takes them.
const (
	KindModels          = "models"
	KindEndpointConfigs = "endpoint-configs"
	KindEndpoints       = "endpoints"
	KindAlarms          = "alarms"
)

// Entry names one record of a list without reading it.
type Entry struct {
	Name string
	// Order is the record's place in creation order: a record created
	// after another has a larger Order. Updates keep it.
	Order int64
}

// Lister reads lists a page at a time. Names costs the same whatever the
// size of the records; the *Named methods read only the records they are
// given. The server's Service implements it; for a Service that does not,
// the APIs page its full lists.
type Lister interface {
	// Names returns the name of every record of a kind (KindModels, ...),
	// sorted by name.
	Names(ctx context.Context, kind string) ([]Entry, error)

	// ModelsNamed and the others return the records with the given names,
	// in that order, leaving out those deleted meanwhile and those damaged
	// in the store (which the server logs): a page may so hold fewer than
	// it was asked for.
	ModelsNamed(ctx context.Context, names []string) ([]Model, error)
	EndpointConfigsNamed(ctx context.Context, names []string) ([]EndpointConfig, error)
	EndpointsNamed(ctx context.Context, names []string) ([]Endpoint, error)
	AlarmsNamed(ctx context.Context, names []string) ([]Alarm, error)
}

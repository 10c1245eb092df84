package store

import (
	"context"
	"errors"
	"fmt"
)

// Any is the ifRevision that makes Put or Delete unconditional.
const Any int64 = -1

// Errors returned by every Store. They are wrapped with the operation and the
// key, so compare them with errors.Is.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-swap failed. The key already exists (Put
	// with ifRevision 0), or its ModRevision is not ifRevision, or it no
	// longer exists (Put with ifRevision > 0).
	ErrConflict = errors.New("revision conflict")
	// ErrCompacted: Watch was asked to start at a revision older than the
	// history the store keeps. List again and watch from the List revision+1.
	ErrCompacted = errors.New("revision compacted")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store closed")
)

// KV is one key with its value and the revisions that created and last
// modified it.
type KV struct {
	Key   string
	Value []byte
	// CreateRevision is the revision of the Put that created the key; a key
	// deleted and created again gets a new one.
	CreateRevision int64
	// ModRevision is the revision of the last Put to the key. It is the
	// ifRevision for a compare-and-swap.
	ModRevision int64
}

// EventType says what happened to a key.
type EventType int

const (
	Put EventType = iota + 1
	Delete
)

func (t EventType) String() string {
	switch t {
	case Put:
		return "PUT"
	case Delete:
		return "DELETE"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change seen by a watcher. The revision of the change is
// KV.ModRevision. For a Put, KV is the key as written. For a Delete, KV holds
// only Key and ModRevision (the revision of the delete).
type Event struct {
	Type EventType
	KV   KV
}

// Store is a revisioned key-value store with etcd's model: one store-wide
// revision counter, bumped by every successful Put and Delete; compare-and-swap
// on a key's ModRevision; and watches that replay history from a revision.
//
// Every method is safe for concurrent use. Returned values are the caller's
// to keep and modify.
type Store interface {
	// Get returns the key, or an error wrapping ErrNotFound, or one wrapping
	// ErrCorruptRecord, naming the key, if the record was damaged on disk.
	Get(ctx context.Context, key string) (KV, error)

	// List returns every key starting with prefix, sorted by key, and the
	// store's revision at which that list was read. An empty prefix lists all
	// keys. Watching from the returned revision+1 sees every later change.
	//
	// A record damaged on disk (ErrCorruptRecord) is left out of the list
	// rather than failing it, and reported to the store's logger.
	List(ctx context.Context, prefix string) ([]KV, int64, error)

	// Keys is List without the values: every key starting with prefix with
	// its revisions, sorted by key, and the store's revision. It reads no
	// value, so a caller that needs a few records of many (a page) lists the
	// keys and then gets those records.
	Keys(ctx context.Context, prefix string) ([]KV, int64, error)

	// Put writes the key if its ModRevision is ifRevision and returns the new
	// revision. ifRevision 0 means the key must not exist; Any writes
	// unconditionally. A failed comparison returns an error wrapping
	// ErrConflict and changes nothing.
	Put(ctx context.Context, key string, value []byte, ifRevision int64) (int64, error)

	// Delete removes the key if its ModRevision is ifRevision (or
	// unconditionally with Any) and returns the new revision. It returns an
	// error wrapping ErrNotFound if the key does not exist and ErrConflict if
	// the revision does not match; ifRevision 0 is invalid.
	Delete(ctx context.Context, key string, ifRevision int64) (int64, error)

	// Watch delivers, in revision order, every event with revision >=
	// fromRevision on keys starting with prefix; fromRevision 0 means from
	// the next revision on. It returns an error wrapping ErrCompacted if
	// fromRevision is older than the history the store keeps.
	//
	// The channel is closed when ctx ends or the store closes. A watcher so
	// slow that the history it still has to read is compacted away is closed
	// too, rather than skipping events; the caller then lists again and
	// watches from the List revision+1, as it would after ErrCompacted.
	// Slow watchers never block writers.
	Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan Event, error)

	// Revision returns the store's current revision: that of the last
	// successful Put or Delete, 0 for a store never written.
	Revision(ctx context.Context) (int64, error)

	// Close releases the store and closes every watch channel. Later calls
	// return errors wrapping ErrClosed; Close itself may be called again.
	Close() error
}

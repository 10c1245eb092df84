package store

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// How a watcher reads the log. Each read is one short read transaction
// (a long one would hold back bbolt's remapping of a growing file, and so
// writers); events are copied out of it and sent with no transaction open.
const (
	watchBatchEvents = 256     // events per read, at most
	watchBatchBytes  = 4 << 20 // bytes of values per read, after which the read stops
	watchBatchScan   = 4096    // log entries scanned per read, matching or not
)

// Watch implements Store.
//
// Each watcher is one goroutine that reads the event log in the bbolt file
// from its own position, so a writer never waits for a watcher and a slow
// watcher costs no memory beyond one batch: it simply reads further behind.
// A commit wakes every watcher, which reads what it has not yet seen. A
// watcher that falls more than Options.History revisions behind finds its
// next event compacted away, and its channel is closed (see Store.Watch).
func (b *Bolt) Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan Event, error) {
	if fromRevision < 0 {
		return nil, fmt.Errorf("store: watch %q: invalid fromRevision %d", prefix, fromRevision)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, fmt.Errorf("store: watch %q: %w", prefix, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: watch %q: %w", prefix, err)
	}
	var rev, compacted int64
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		meta := tx.Bucket(metaBucket)
		if rev, err = getInt(meta, revisionKey); err != nil {
			return err
		}
		compacted, err = getInt(meta, compactedKey)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: watch %q: %w", prefix, err)
	}
	if fromRevision == 0 {
		fromRevision = rev + 1
	}
	if fromRevision <= compacted {
		return nil, fmt.Errorf("store: watch %q from revision %d: the oldest revision kept is %d: %w",
			prefix, fromRevision, compacted+1, ErrCompacted)
	}

	ch := make(chan Event)
	b.watchers.Add(1) // under mu, so never after Close has begun waiting
	go b.watch(ctx, prefix, fromRevision, ch)
	return ch, nil
}

func (b *Bolt) watch(ctx context.Context, prefix string, next int64, ch chan<- Event) {
	defer b.watchers.Done()
	defer close(ch)
	for ctx.Err() == nil {
		// Taken before reading, so a commit the read misses still wakes us.
		changed := b.changed()
		evs, after, caughtUp, err := b.readLog(prefix, next)
		if err != nil {
			// The events before a damaged one are delivered; the damaged
			// one never is, and the watcher stops there, so that its
			// reader lists again rather than miss a change.
			if !b.send(ctx, ch, evs) {
				return
			}
			switch {
			case errors.Is(err, ErrClosed):
			case errors.Is(err, ErrCompacted):
				b.log.Warn("store: watcher fell behind the kept history; closing it",
					"prefix", prefix, "revision", next, "err", err)
			default:
				b.log.Error("store: watcher failed; closing it", "prefix", prefix, "revision", next, "err", err)
			}
			return
		}
		if !b.send(ctx, ch, evs) {
			return
		}
		next = after
		if caughtUp {
			select {
			case <-changed:
			case <-ctx.Done():
				return
			case <-b.done:
				return
			}
		}
	}
}

// send delivers evs, reporting false if the watch ended first.
func (b *Bolt) send(ctx context.Context, ch chan<- Event, evs []Event) bool {
	for _, ev := range evs {
		select {
		case ch <- ev:
		case <-ctx.Done():
			return false
		case <-b.done:
			return false
		}
	}
	return true
}

// readLog returns the next batch of events on keys with prefix, from
// revision next on, the revision to continue from, and whether it reached
// the end of the log.
func (b *Bolt) readLog(prefix string, next int64) (evs []Event, after int64, caughtUp bool, err error) {
	after = next
	err = b.view(context.Background(), func(tx *bolt.Tx) error {
		compacted, err := getInt(tx.Bucket(metaBucket), compactedKey)
		if err != nil {
			return err
		}
		if next <= compacted {
			return fmt.Errorf("revision %d, oldest kept %d: %w", next, compacted+1, ErrCompacted)
		}
		p := []byte(prefix)
		var scanned, size int
		c := tx.Bucket(logBucket).Cursor()
		for k, v := c.Seek(encodeInt(next)); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("%w: log key is %d bytes", ErrCorrupt, len(k))
			}
			rev := int64(be64(k))
			after = rev + 1
			key, _, err := splitEvent(v)
			if err != nil {
				return err
			}
			if hasPrefix(key, p) {
				ev, err := decodeEvent(rev, v)
				if err != nil {
					return err // evs so far are still returned
				}
				evs = append(evs, ev)
				size += len(ev.KV.Value)
			}
			scanned++
			if len(evs) >= watchBatchEvents || size >= watchBatchBytes || scanned >= watchBatchScan {
				return nil
			}
		}
		caughtUp = true
		return nil
	})
	return evs, after, caughtUp, err
}

package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Errors returned by Open.
var (
	// ErrLocked: another process holds the data file open.
	ErrLocked = errors.New("data file is locked by another process")
	// ErrCorrupt: the data file is damaged (truncated, overwritten) or is not
	// a Kiln store.
	ErrCorrupt = errors.New("data file is corrupt")
	// ErrCorruptRecord: one record's checksum does not match its bytes: it
	// was damaged on disk. The error names the record's key. The rest of
	// the store is usable, and Delete with Any removes the record.
	ErrCorruptRecord = errors.New("record is corrupt")
)

const (
	defaultLockTimeout = time.Second
	defaultHistory     = 10000
	// formatVersion 2 added a CRC-32C to every record and event; Open
	// migrates a version 1 file in place.
	formatVersion = 2
)

// The layout of the bbolt file. Integers are big-endian so that the log's
// keys sort by revision.
var (
	// metaBucket holds formatKey, revisionKey (the store's revision) and
	// compactedKey (the newest revision dropped from the log; 0 if none).
	metaBucket   = []byte("meta")
	formatKey    = []byte("format")
	revisionKey  = []byte("revision")
	compactedKey = []byte("compacted")
	// kvBucket maps each key to createRevision(8) modRevision(8) crc(4)
	// value, where crc is the CRC-32C of key, the two revisions and value.
	kvBucket = []byte("kv")
	// logBucket maps revision(8) to the event made at that revision:
	// crc(4) type(1) createRevision(8) uvarint(len(key)) key value, where
	// crc is the CRC-32C of the revision and every byte after the crc.
	logBucket = []byte("log")
)

// Options configure a Bolt store. A nil *Options is the same as a zero one.
type Options struct {
	// LockTimeout is how long Open waits for another process to close the
	// data file before failing with ErrLocked. If zero, one second.
	LockTimeout time.Duration

	// History is how many of the most recent revisions keep their event in
	// the log, for watchers that start in the past or fall behind. Older
	// events are dropped as new ones are written. Each kept Put event holds
	// a copy of its value, so the file holds up to History values beyond
	// those of the live keys. If zero, 10000.
	History int

	// Logger receives the reasons watchers stop early (a watcher that fell
	// further behind than History, a read error). If nil, nothing is logged.
	Logger *slog.Logger
}

// Bolt is the embedded Store: one bbolt file, fsync'd on every commit,
// locked against other processes while open.
//
// Every successful Put or Delete is one bbolt transaction that updates the
// key, appends the event to the log under its revision, drops the log's
// oldest event once it holds more than Options.History, and stores the new
// revision. The write is acknowledged only after bbolt's commit has fsync'd
// the file, so an acknowledged write survives a crash.
type Bolt struct {
	db      *bolt.DB
	history int64
	log     *slog.Logger

	// mu is held for reading around every use of db, and for writing by
	// Close, so Close waits for in-flight operations and none starts after.
	mu     sync.RWMutex
	closed bool
	done   chan struct{} // closed by Close: watchers stop

	watchers sync.WaitGroup

	notifyMu sync.Mutex
	notify   chan struct{} // closed, and replaced, after every commit
}

var _ Store = (*Bolt)(nil)

// Open opens the store in the bbolt file at path, creating it if needed.
//
// A new file is created whole (see create), so an existing file that is
// empty, or a bbolt file without Kiln's buckets, is refused with ErrCorrupt.
// An existing file is verified first: its meta pages, its size against what
// they claim, every page bbolt can reach and every record of the store, so a
// truncated or damaged file is reported as ErrCorrupt rather than trusted.
// The cost is one read of the file. A record whose checksum does not match
// does not stop the store from opening: it is logged, Get refuses it with
// ErrCorruptRecord, List leaves it out, and Delete with Any removes it. A
// file of format 1 (before checksums) is migrated in one transaction. If
// another process has the file open, Open fails with ErrLocked after
// Options.LockTimeout.
func Open(path string, opts *Options) (*Bolt, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.LockTimeout < 0 || o.History < 0 {
		return nil, fmt.Errorf("open store %s: LockTimeout and History must not be negative", path)
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = defaultLockTimeout
	}
	if o.History == 0 {
		o.History = defaultHistory
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}

	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := create(path, o.LockTimeout); err != nil {
			return nil, fmt.Errorf("open store: create %s: %w", path, err)
		}
	case err != nil:
		return nil, fmt.Errorf("open store: %w", err)
	case fi.Size() == 0:
		// Kiln creates its file whole, so an empty one is not a new store
		// but a lost one (a failed copy, a full disk): starting afresh would
		// hide that every record is gone.
		return nil, fmt.Errorf("open store %s: %w: the file is empty (0 bytes), not a Kiln store; "+
			"if this data dir is meant to be new, remove the file", path, ErrCorrupt)
	}
	damaged, err := verifyFile(path, o.LockTimeout)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	for _, d := range damaged {
		o.Logger.Error("store: a damaged record will be refused when read; inspect or delete it with `kiln store`",
			"path", path, "err", d)
	}

	db, err := openBolt(path, o.LockTimeout, false)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if migrated, err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: migrate to format %d: %w", path, formatVersion, err)
	} else if migrated {
		o.Logger.Info("store: added a checksum to every record", "path", path, "format", formatVersion)
	}
	return &Bolt{
		db:      db,
		history: int64(o.History),
		log:     o.Logger,
		done:    make(chan struct{}),
		notify:  make(chan struct{}),
	}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Get implements Store.
func (b *Bolt) Get(ctx context.Context, key string) (KV, error) {
	var kv KV
	err := b.view(ctx, func(tx *bolt.Tx) error {
		var ok bool
		var err error
		kv, ok, err = getKV(tx.Bucket(kvBucket), key)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if errors.Is(err, ErrCorruptRecord) {
		b.log.Error("store: refusing to read a damaged record; inspect or delete it with `kiln store`", "key", key, "err", err)
	}
	if err != nil {
		return KV{}, fmt.Errorf("store: get %q: %w", key, err)
	}
	return kv, nil
}

// List implements Store.
func (b *Bolt) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	kvs, rev, err := b.scan(ctx, prefix, decodeKV)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list %q: %w", prefix, err)
	}
	return kvs, rev, nil
}

// Keys implements Store. It reads no value, so it costs the same whatever
// the size of the records.
func (b *Bolt) Keys(ctx context.Context, prefix string) ([]KV, int64, error) {
	kvs, rev, err := b.scan(ctx, prefix, func(k, v []byte) (KV, error) {
		kv, ok := readRevisions(k, v)
		if !ok {
			return KV{}, fmt.Errorf("%d bytes, shorter than its revisions", len(v))
		}
		return kv, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: keys %q: %w", prefix, err)
	}
	return kvs, rev, nil
}

// scan reads, with read, every record whose key starts with prefix, and
// the store's revision. One damaged record must not hide the others, nor
// be served: it is left out, and reported.
func (b *Bolt) scan(ctx context.Context, prefix string, read func(k, v []byte) (KV, error)) ([]KV, int64, error) {
	var kvs []KV
	var rev int64
	err := b.view(ctx, func(tx *bolt.Tx) error {
		var err error
		if rev, err = getInt(tx.Bucket(metaBucket), revisionKey); err != nil {
			return err
		}
		c := tx.Bucket(kvBucket).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
			kv, err := read(k, v)
			if err != nil {
				b.log.Error("store: leaving a damaged record out of a list; inspect or delete it with `kiln store`",
					"key", string(k), "err", err)
				continue
			}
			kvs = append(kvs, kv)
		}
		return nil
	})
	return kvs, rev, err
}

// Record is a key as it is on disk, damaged or not: what an operator
// inspects with `kiln store`.
type Record struct {
	// KV holds what could be read: for a damaged record, the revisions and
	// the value may be wrong.
	KV
	// Err wraps ErrCorruptRecord if the record's checksum does not match;
	// nil for a sound record.
	Err error
}

// Inspect returns the record at key as it is on disk, damaged or not, or
// an error wrapping ErrNotFound.
func (b *Bolt) Inspect(ctx context.Context, key string) (Record, error) {
	var r Record
	err := b.view(ctx, func(tx *bolt.Tx) error {
		kv, ok, err := getKV(tx.Bucket(kvBucket), key)
		if !ok {
			return ErrNotFound
		}
		r = Record{KV: kv, Err: err}
		return nil
	})
	if err != nil {
		return Record{}, fmt.Errorf("store: inspect %q: %w", key, err)
	}
	return r, nil
}

// Scan calls fn with every record whose key starts with prefix, in key
// order, damaged ones included, inside one read transaction. It is for
// offline inspection; Kiln itself reads with Get, List and Watch, which
// never return a damaged record.
func (b *Bolt) Scan(ctx context.Context, prefix string, fn func(Record) error) error {
	err := b.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(kvBucket).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
			kv, err := rawKV(k, v)
			if err := fn(Record{KV: kv, Err: err}); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: scan %q: %w", prefix, err)
	}
	return nil
}

// Revision implements Store.
func (b *Bolt) Revision(ctx context.Context) (int64, error) {
	var rev int64
	err := b.view(ctx, func(tx *bolt.Tx) error {
		var err error
		rev, err = getInt(tx.Bucket(metaBucket), revisionKey)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: revision: %w", err)
	}
	return rev, nil
}

// Put implements Store.
func (b *Bolt) Put(ctx context.Context, key string, value []byte, ifRevision int64) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, fmt.Errorf("store: put %q: %w", key, err)
	}
	if ifRevision < Any {
		return 0, fmt.Errorf("store: put %q: invalid ifRevision %d", key, ifRevision)
	}
	rev, err := b.write(ctx, func(tx *bolt.Tx, rev int64) (Event, error) {
		kvs := tx.Bucket(kvBucket)
		cur, ok, err := getKV(kvs, key)
		switch {
		case err != nil && ifRevision == Any:
			// A damaged record is overwritten as if it were new: its
			// revisions cannot be trusted.
			ok = false
		case ok && ifRevision == 0 && err != nil:
			return Event{}, fmt.Errorf("key exists: %w", ErrConflict)
		case err != nil:
			return Event{}, err
		case ifRevision == 0 && ok:
			return Event{}, fmt.Errorf("key exists at revision %d: %w", cur.ModRevision, ErrConflict)
		case ifRevision > 0 && !ok:
			return Event{}, fmt.Errorf("key does not exist, want revision %d: %w", ifRevision, ErrConflict)
		case ifRevision > 0 && cur.ModRevision != ifRevision:
			return Event{}, fmt.Errorf("key is at revision %d, want %d: %w", cur.ModRevision, ifRevision, ErrConflict)
		}
		kv := KV{Key: key, Value: value, CreateRevision: rev, ModRevision: rev}
		if ok {
			kv.CreateRevision = cur.CreateRevision
		}
		if err := kvs.Put([]byte(key), encodeKV(kv)); err != nil {
			return Event{}, err
		}
		return Event{Type: Put, KV: kv}, nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: put %q: %w", key, err)
	}
	return rev, nil
}

// Delete implements Store.
func (b *Bolt) Delete(ctx context.Context, key string, ifRevision int64) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, fmt.Errorf("store: delete %q: %w", key, err)
	}
	if ifRevision == 0 || ifRevision < Any {
		return 0, fmt.Errorf("store: delete %q: invalid ifRevision %d", key, ifRevision)
	}
	rev, err := b.write(ctx, func(tx *bolt.Tx, rev int64) (Event, error) {
		kvs := tx.Bucket(kvBucket)
		cur, ok, err := getKV(kvs, key)
		switch {
		case !ok:
			return Event{}, ErrNotFound
		case err != nil && ifRevision != Any:
			return Event{}, err
		case err != nil:
			// Any removes a damaged record too: that is how an operator
			// gets rid of one.
		case ifRevision > 0 && cur.ModRevision != ifRevision:
			return Event{}, fmt.Errorf("key is at revision %d, want %d: %w", cur.ModRevision, ifRevision, ErrConflict)
		}
		if err := kvs.Delete([]byte(key)); err != nil {
			return Event{}, err
		}
		return Event{Type: Delete, KV: KV{Key: key, ModRevision: rev}}, nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: delete %q: %w", key, err)
	}
	return rev, nil
}

// Close implements Store. It waits for in-flight operations and for every
// watcher goroutine to stop, then closes the file.
func (b *Bolt) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	b.mu.Unlock()

	b.watchers.Wait()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// view runs fn in a read transaction.
func (b *Bolt) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(fn)
}

// write runs fn in a write transaction at the next revision, then logs the
// event fn returns, compacts the log and stores the revision. It returns
// once the transaction is durable.
func (b *Bolt) write(ctx context.Context, fn func(tx *bolt.Tx, rev int64) (Event, error)) (int64, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev int64
	err := b.db.Update(func(tx *bolt.Tx) error {
		// Writers queue for bbolt's lock; one whose caller gave up while
		// waiting must not write.
		if err := ctx.Err(); err != nil {
			return err
		}
		meta := tx.Bucket(metaBucket)
		cur, err := getInt(meta, revisionKey)
		if err != nil {
			return err
		}
		rev = cur + 1
		ev, err := fn(tx, rev)
		if err != nil {
			return err
		}
		log := tx.Bucket(logBucket)
		if err := log.Put(encodeInt(rev), encodeEvent(rev, ev)); err != nil {
			return err
		}
		if err := meta.Put(revisionKey, encodeInt(rev)); err != nil {
			return err
		}
		return b.compact(meta, log, rev)
	})
	if err != nil {
		return 0, err
	}
	b.broadcast()
	return rev, nil
}

// compact drops the log's events older than the newest b.history.
func (b *Bolt) compact(meta, log *bolt.Bucket, rev int64) error {
	floor := rev - b.history
	compacted, err := getInt(meta, compactedKey)
	if err != nil || floor <= compacted {
		return err
	}
	// A fresh cursor each time: bbolt cursors skip entries when deleting
	// while iterating. Usually there is exactly one event to drop.
	for {
		k, _ := log.Cursor().First()
		if k == nil || int64(be64(k)) > floor {
			break
		}
		if err := log.Delete(k); err != nil {
			return err
		}
	}
	return meta.Put(compactedKey, encodeInt(floor))
}

// changed returns a channel closed at the next commit.
func (b *Bolt) changed() <-chan struct{} {
	b.notifyMu.Lock()
	defer b.notifyMu.Unlock()
	return b.notify
}

func (b *Bolt) broadcast() {
	b.notifyMu.Lock()
	defer b.notifyMu.Unlock()
	close(b.notify)
	b.notify = make(chan struct{})
}

func checkKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty key")
	case len(key) > bolt.MaxKeySize:
		return fmt.Errorf("key longer than %d bytes", bolt.MaxKeySize)
	}
	return nil
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

func encodeInt(n int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(n))
}

func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func getInt(b *bolt.Bucket, key []byte) (int64, error) {
	v := b.Get(key)
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: meta %s is %d bytes, want 8", ErrCorrupt, key, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

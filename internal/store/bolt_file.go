package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Opening a damaged file must fail: not crash, and not trust the file.
// bbolt maps the file into memory and follows the page numbers and lengths
// it finds there: a file cut short (a bad copy, a full disk, a
// half-restored backup) or overwritten makes it panic, or fault, which kills
// the process. So an existing file is first opened read-only, which reads
// nothing but the meta pages and takes a shared lock, so that no writer
// changes the file meanwhile. checkMeta then reads the meta and freelist
// pages as bbolt does and rejects a file shorter than they say, and verify
// reads every record with faults turned into panics, recovered as
// ErrCorrupt, and has bbolt check every page. Only a file that passed is
// opened for writing.

// The bbolt meta page, version 2: a 16-byte page header, then magic(4)
// version(4) pageSize(4) flags(4) root(8) sequence(8) freelist(8) pgid(8)
// txid(8) checksum(8), in the machine's byte order. The checksum is FNV-64a
// of the 56 bytes before it.
const (
	boltPageHeader = 16
	boltMetaSize   = 64
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltNoFreelist = ^uint64(0)

	boltFreelistPage = 0x10 // page header flags
)

type boltMeta struct {
	pageSize, root, freelist, pgid, txid uint64
}

// readMeta reads the meta page at off, reporting whether it is valid.
func readMeta(f io.ReaderAt, off int64) (boltMeta, bool) {
	buf := make([]byte, boltPageHeader+boltMetaSize)
	if _, err := f.ReadAt(buf, off); err != nil {
		return boltMeta{}, false
	}
	m := buf[boltPageHeader:]
	ne := binary.NativeEndian
	h := fnv.New64a()
	h.Write(m[:56])
	if ne.Uint32(m) != boltMagic || ne.Uint32(m[4:]) != boltVersion || ne.Uint64(m[56:]) != h.Sum64() {
		return boltMeta{}, false
	}
	return boltMeta{
		pageSize: uint64(ne.Uint32(m[8:])),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, true
}

// checkMeta checks that the non-empty file at path has a valid bbolt meta
// page and is as long as the newest valid one says.
func checkMeta(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()

	// Like bbolt: the page size comes from meta page 0, or, if that one is
	// damaged, from wherever a valid meta page 1 is found.
	var metas []boltMeta
	offsets := []int64{}
	if m, ok := readMeta(f, 0); ok {
		metas = append(metas, m)
		offsets = append(offsets, int64(m.pageSize))
	} else {
		for i := 0; i <= 14; i++ {
			offsets = append(offsets, 1024<<i)
		}
	}
	for _, off := range offsets {
		if m, ok := readMeta(f, off); ok && int64(m.pageSize) == off {
			metas = append(metas, m)
			break
		}
	}
	if len(metas) == 0 {
		return fmt.Errorf("%w: no valid bbolt meta page (%d bytes)", ErrCorrupt, size)
	}
	m := metas[0]
	if len(metas) == 2 && metas[1].txid > m.txid {
		m = metas[1]
	}
	switch {
	case m.pageSize < 1024 || m.pageSize&(m.pageSize-1) != 0:
		return fmt.Errorf("%w: bad page size %d", ErrCorrupt, m.pageSize)
	case m.pgid > uint64(size)/m.pageSize:
		return fmt.Errorf("%w: truncated: the file is %d bytes, its meta page says %d",
			ErrCorrupt, size, m.pgid*m.pageSize)
	case m.root >= m.pgid || (m.freelist != boltNoFreelist && m.freelist >= m.pgid):
		return fmt.Errorf("%w: meta page points past the end of the data", ErrCorrupt)
	case m.freelist != boltNoFreelist:
		return checkFreelist(f, m)
	}
	return nil
}

// checkFreelist checks the freelist page the meta page points to, which
// bbolt reads trusting the length written in it.
func checkFreelist(f io.ReaderAt, m boltMeta) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: freelist page %d: %s", ErrCorrupt, m.freelist, why)
	}
	hdr := make([]byte, boltPageHeader+8)
	if _, err := f.ReadAt(hdr, int64(m.freelist*m.pageSize)); err != nil {
		return bad(err.Error())
	}
	ne := binary.NativeEndian
	flags, count, overflow := ne.Uint16(hdr[8:]), uint64(ne.Uint16(hdr[10:])), uint64(ne.Uint32(hdr[12:]))
	if flags != boltFreelistPage {
		return bad(fmt.Sprintf("page type %#x", flags))
	}
	if m.freelist+overflow >= m.pgid {
		return bad("overflows the data")
	}
	first := uint64(0)
	if count == 0xFFFF { // the real count is the first element
		first, count = 1, ne.Uint64(hdr[boltPageHeader:])
	}
	room := ((overflow+1)*m.pageSize - boltPageHeader) / 8
	if count > room || first+count > room {
		return bad(fmt.Sprintf("%d entries do not fit", count))
	}
	ids := make([]byte, (first+count)*8)
	if _, err := f.ReadAt(ids, int64(m.freelist*m.pageSize+boltPageHeader)); err != nil {
		return bad(err.Error())
	}
	for i := first; i < first+count; i++ {
		if id := ne.Uint64(ids[i*8:]); id < 2 || id >= m.pgid {
			return bad(fmt.Sprintf("lists page %d", id))
		}
	}
	return nil
}

// verifyFile checks the existing, non-empty bbolt file at path through a
// read-only handle.
func verifyFile(path string, lockTimeout time.Duration) (err error) {
	db, err := openBolt(path, lockTimeout, true)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := checkMeta(path); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		// View has rolled back by now, so the deferred Close can proceed.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(metaBucket) != nil {
			return verify(tx)
		}
		if k, _ := tx.Cursor().First(); k != nil {
			return fmt.Errorf("%w: a bbolt file, but not a Kiln store", ErrCorrupt)
		}
		return nil // an empty bbolt file, initialized once open
	})
}

// openBolt opens the bbolt file. A panic inside bbolt is recovered as
// ErrCorrupt, as a last line of defence: Open opens for writing only files
// verified read-only first, and reading the meta pages, all a read-only
// open does, cannot fault.
func openBolt(path string, lockTimeout time.Duration, readOnly bool) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: readOnly})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w (waited %v)", ErrLocked, lockTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	case err != nil:
		return nil, err
	}
	return db, nil
}

// initialize creates the store's buckets if the file has none yet.
func initialize(db *bolt.DB) error {
	var ok bool
	if err := db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(metaBucket) != nil
		return nil
	}); err != nil || ok {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(metaBucket)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{kvBucket, logBucket} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		for k, v := range map[string]int64{string(formatKey): formatVersion, string(revisionKey): 0, string(compactedKey): 0} {
			if err := meta.Put([]byte(k), encodeInt(v)); err != nil {
				return err
			}
		}
		return nil
	})
}

// verify reads every record of the store, checking the invariants writes
// keep, then has bbolt check every page. The records are read first, in the
// goroutine where a fault on a damaged page is recovered; bbolt's check runs
// in a goroutine of its own, and so only over pages already read.
func verify(tx *bolt.Tx) error {
	meta, kvs, log := tx.Bucket(metaBucket), tx.Bucket(kvBucket), tx.Bucket(logBucket)
	if kvs == nil || log == nil {
		return fmt.Errorf("%w: missing buckets", ErrCorrupt)
	}
	format, err := getInt(meta, formatKey)
	if err != nil {
		return err
	}
	if format != formatVersion {
		return fmt.Errorf("store format %d, want %d", format, formatVersion)
	}
	rev, err := getInt(meta, revisionKey)
	if err != nil {
		return err
	}
	compacted, err := getInt(meta, compactedKey)
	if err != nil {
		return err
	}
	if rev < 0 || compacted < 0 || compacted > rev {
		return fmt.Errorf("%w: revision %d, compacted %d", ErrCorrupt, rev, compacted)
	}
	err = kvs.ForEach(func(k, v []byte) error {
		kv, err := decodeKV(k, v)
		if err != nil {
			return err
		}
		if kv.CreateRevision < 1 || kv.CreateRevision > kv.ModRevision || kv.ModRevision > rev {
			return fmt.Errorf("%w: key %q has revisions %d/%d, store revision %d",
				ErrCorrupt, k, kv.CreateRevision, kv.ModRevision, rev)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = log.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("%w: log key is %d bytes", ErrCorrupt, len(k))
		}
		r := int64(be64(k))
		if r <= compacted || r > rev {
			return fmt.Errorf("%w: log has revision %d outside (%d, %d]", ErrCorrupt, r, compacted, rev)
		}
		_, err := decodeEvent(r, v)
		return err
	})
	if err != nil {
		return err
	}
	// The checker stops only once its channel is drained, and it must stop
	// before the transaction ends.
	var first error
	for err := range tx.Check() {
		if first == nil {
			first = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	return first
}

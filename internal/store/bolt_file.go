package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
		if err := checkFreelist(f, m); err != nil {
			return err
		}
	}
	return checkTree(f, m)
}

// Page header flags, and the flag of a leaf element that is a bucket.
const (
	boltBranchPage = 0x01
	boltLeafPage   = 0x02
	boltBucketLeaf = 0x01
)

// checkTree walks every page reachable from the meta page's root, reading
// the file rather than bbolt's memory map, and refuses a page that is out
// of the data, claims a run past its end, is reached twice (a cycle, which
// would loop bbolt's cursors and its Check forever), or holds elements
// outside itself. bbolt trusts all of these: it would read outside the map
// (a fatal fault) or never stop.
func checkTree(f io.ReaderAt, m boltMeta) error {
	seen := map[uint64]bool{}
	var page func(id uint64) error
	var elements func(where string, p []byte) error
	elements = func(where string, p []byte) error {
		bad := func(why string) error { return fmt.Errorf("%w: %s: %s", ErrCorrupt, where, why) }
		ne := binary.NativeEndian
		flags, count := ne.Uint16(p[8:]), uint64(ne.Uint16(p[10:]))
		if boltPageHeader+count*16 > uint64(len(p)) {
			return bad(fmt.Sprintf("%d elements do not fit", count))
		}
		for i := range count {
			e := p[boltPageHeader+i*16:]
			off := uint64(boltPageHeader + i*16)
			switch flags {
			case boltBranchPage:
				pos, ksize, child := uint64(ne.Uint32(e)), uint64(ne.Uint32(e[4:])), ne.Uint64(e[8:])
				if off+pos+ksize > uint64(len(p)) {
					return bad(fmt.Sprintf("element %d lies outside the page", i))
				}
				if err := page(child); err != nil {
					return err
				}
			case boltLeafPage:
				eflags, pos, ksize, vsize := ne.Uint32(e), uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
				if off+pos+ksize+vsize > uint64(len(p)) {
					return bad(fmt.Sprintf("element %d lies outside the page", i))
				}
				if eflags&boltBucketLeaf == 0 {
					continue
				}
				v := p[off+pos+ksize : off+pos+ksize+vsize]
				if len(v) < 16 {
					return bad(fmt.Sprintf("bucket %d is %d bytes", i, len(v)))
				}
				if root := ne.Uint64(v); root != 0 {
					if err := page(root); err != nil {
						return err
					}
				} else if inline := v[16:]; len(inline) < boltPageHeader || ne.Uint16(inline[8:]) != boltLeafPage {
					return bad(fmt.Sprintf("inline bucket %d is not a leaf", i))
				} else if err := elements(where+" (inline bucket)", inline); err != nil {
					return err
				}
			default:
				return bad(fmt.Sprintf("page type %#x", flags))
			}
		}
		return nil
	}
	page = func(id uint64) error {
		where := fmt.Sprintf("page %d", id)
		if id < 2 || id >= m.pgid {
			return fmt.Errorf("%w: %s is outside the data (%d pages)", ErrCorrupt, where, m.pgid)
		}
		hdr := make([]byte, boltPageHeader)
		if _, err := f.ReadAt(hdr, int64(id*m.pageSize)); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, where, err)
		}
		ne := binary.NativeEndian
		overflow := uint64(ne.Uint32(hdr[12:]))
		switch {
		case ne.Uint64(hdr) != id:
			return fmt.Errorf("%w: %s has the id %d", ErrCorrupt, where, ne.Uint64(hdr))
		case id+overflow >= m.pgid:
			return fmt.Errorf("%w: %s claims %d overflow pages, past the end of the data", ErrCorrupt, where, overflow)
		}
		for i := id; i <= id+overflow; i++ {
			if seen[i] {
				return fmt.Errorf("%w: page %d is reached twice", ErrCorrupt, i)
			}
			seen[i] = true
		}
		p := make([]byte, (overflow+1)*m.pageSize)
		if _, err := f.ReadAt(p, int64(id*m.pageSize)); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, where, err)
		}
		return elements(where, p)
	}
	return page(m.root)
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
// read-only handle. It returns the records and events found damaged, which
// do not stop the store from opening: each is refused when read.
func verifyFile(path string, lockTimeout time.Duration) (damaged []string, err error) {
	db, err := openBolt(path, lockTimeout, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := checkMeta(path); err != nil {
		return nil, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		// View has rolled back by now, so the deferred Close can proceed.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(metaBucket) == nil {
			// Kiln creates its file whole (see create), so a bbolt file
			// without Kiln's buckets was made by something else.
			return fmt.Errorf("%w: a bbolt file, but not a Kiln store (no %q bucket with its format marker)", ErrCorrupt, metaBucket)
		}
		var err error
		damaged, err = verify(tx)
		return err
	})
	return damaged, err
}

// openBolt opens the bbolt file. A panic inside bbolt is recovered as
// ErrCorrupt, as a last line of defence: Open opens for writing only files
// verified read-only first, and a fault while the meta pages and the free
// list are read is made a panic.
func openBolt(path string, lockTimeout time.Duration, readOnly bool) (db *bolt.DB, err error) {
	// Loading the free list reads a page the meta names: a damaged one may
	// point beyond the file.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	// The free list is loaded read-only too, so that checkPageRuns can ask
	// for any page.
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: readOnly, PreLoadFreelist: true})
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

// create makes a new store at path, whole or not at all: the file is
// written and fsync'd under a temporary name, with its buckets and format
// marker, and then linked to path, which fails if another process has
// created path meanwhile (that file is then opened instead). So a file at
// path is always a complete store, and an empty or bucketless one is
// refused rather than taken for a new store.
func create(path string, lockTimeout time.Duration) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".new-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	db, err := openBolt(tmp, lockTimeout, false)
	if err != nil {
		return err
	}
	if err := initialize(db); err != nil {
		db.Close()
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		// A file system without hard links: rename, which would replace a
		// file created meanwhile, so only if there is none.
		if _, serr := os.Stat(path); !errors.Is(serr, fs.ErrNotExist) {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	// The new file's directory entry must be durable too, or a crash
	// could lose the whole file along with every acknowledged write.
	return syncDir(dir)
}

// initialize creates the store's buckets in a new bbolt file.
func initialize(db *bolt.DB) error {
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
// in a goroutine of its own, and so only over pages already read. A record
// or event whose checksum does not match is returned, not an error: it is
// one damaged record, which reads refuse, and `kiln store` deletes.
func verify(tx *bolt.Tx) (damaged []string, err error) {
	meta, kvs, log := tx.Bucket(metaBucket), tx.Bucket(kvBucket), tx.Bucket(logBucket)
	if kvs == nil || log == nil {
		return nil, fmt.Errorf("%w: missing buckets", ErrCorrupt)
	}
	format, err := getInt(meta, formatKey)
	if err != nil {
		return nil, err
	}
	if format != 1 && format != formatVersion {
		return nil, fmt.Errorf("%w: store format %d, want 1 or %d", ErrCorrupt, format, formatVersion)
	}
	rev, err := getInt(meta, revisionKey)
	if err != nil {
		return nil, err
	}
	compacted, err := getInt(meta, compactedKey)
	if err != nil {
		return nil, err
	}
	if rev < 0 || compacted < 0 || compacted > rev {
		return nil, fmt.Errorf("%w: revision %d, compacted %d", ErrCorrupt, rev, compacted)
	}
	err = kvs.ForEach(func(k, v []byte) error {
		var kv KV
		if format == 1 {
			var ok bool
			if kv, ok = readRevisions(k, v); !ok {
				return fmt.Errorf("%w: record %q is %d bytes", ErrCorrupt, k, len(v))
			}
		} else {
			var err error
			if kv, err = decodeKV(k, v); err != nil {
				damaged = append(damaged, err.Error())
				return nil
			}
		}
		if kv.CreateRevision < 1 || kv.CreateRevision > kv.ModRevision || kv.ModRevision > rev {
			return fmt.Errorf("%w: key %q has revisions %d/%d, store revision %d",
				ErrCorrupt, k, kv.CreateRevision, kv.ModRevision, rev)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = log.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("%w: log key is %d bytes", ErrCorrupt, len(k))
		}
		r := int64(be64(k))
		if r <= compacted || r > rev {
			return fmt.Errorf("%w: log has revision %d outside (%d, %d]", ErrCorrupt, r, compacted, rev)
		}
		if format == 1 {
			_, _, err := splitEventBody(v)
			return err
		}
		_, err := decodeEvent(r, v)
		if errors.Is(err, ErrCorruptRecord) {
			damaged = append(damaged, err.Error())
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := checkPageRuns(tx); err != nil {
		return damaged, err
	}

	// The checker stops only once its channel is drained, and it must stop
	// before the transaction ends.
	var first error
	for err := range tx.Check() {
		if first == nil {
			first = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	return damaged, first
}

// checkPageRuns refuses a file in which a page's header claims a run of
// pages beyond the file's last page. bbolt's Check walks a run page by page
// into a map, so a damaged overflow count (up to 2^32) would keep it busy
// for hours and fill the memory; walking the runs in use as they lie in the
// file, and free pages one by one, costs one look per run or free page.
func checkPageRuns(tx *bolt.Tx) error {
	for id := 2; ; {
		info, err := tx.Page(id)
		if err != nil {
			return fmt.Errorf("%w: page %d: %v", ErrCorrupt, id, err)
		}
		if info == nil {
			return nil // past the last page
		}
		if info.Type == "free" {
			// Free pages are listed one by one, and a free page that was
			// inside a longer run holds data, not a header.
			id++
			continue
		}
		end := id + info.OverflowCount
		if last, err := tx.Page(end); err != nil || last == nil {
			return fmt.Errorf("%w: page %d claims %d overflow pages, beyond the end of the file", ErrCorrupt, id, info.OverflowCount)
		}
		id = end + 1
	}
}

// migrate brings a store of format 1 (no checksums) to the current format
// in one transaction: every record and every event gets its checksum, and
// the format marker changes last, so a crash midway leaves the file as it
// was. It returns whether it changed anything.
func migrate(db *bolt.DB) (bool, error) {
	var format int64
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		format, err = getInt(tx.Bucket(metaBucket), formatKey)
		return err
	})
	if err != nil || format == formatVersion {
		return false, err
	}
	var done bool
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		format, err := getInt(meta, formatKey)
		if err != nil || format == formatVersion {
			return err
		}
		err = rewrite(tx.Bucket(kvBucket), func(k, v []byte) []byte {
			kv, _ := readRevisions(k, v) // verify checked the length
			kv.Value = v[16:]
			return encodeKV(kv)
		})
		if err != nil {
			return err
		}
		err = rewrite(tx.Bucket(logBucket), func(k, v []byte) []byte {
			buf := make([]byte, 4, 4+len(v))
			buf = append(buf, v...)
			binary.BigEndian.PutUint32(buf, eventSum(int64(be64(k)), v))
			return buf
		})
		if err != nil {
			return err
		}
		done = true
		return meta.Put(formatKey, encodeInt(formatVersion))
	})
	return done, err
}

// rewrite replaces every value of b with conv of it, a batch at a time: a
// bucket must not change under the cursor that iterates it, and one batch
// bounds the copies held in memory.
func rewrite(b *bolt.Bucket, conv func(k, v []byte) []byte) error {
	const batch = 256
	var after []byte
	for {
		var keys, vals [][]byte
		c := b.Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after); k != nil && string(k) == string(after) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(keys) < batch; k, v = c.Next() {
			keys = append(keys, append([]byte{}, k...))
			vals = append(vals, conv(k, v))
		}
		if len(keys) == 0 {
			return nil
		}
		for i := range keys {
			if err := b.Put(keys[i], vals[i]); err != nil {
				return err
			}
		}
		after = keys[len(keys)-1]
	}
}

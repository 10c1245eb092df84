package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"
)

// Every record and every event carries a CRC-32C of its bytes, checked on
// every read, because bbolt keeps no checksums of its data pages: a byte
// flipped on disk inside a value would otherwise be served as if it had been
// written. The key and the revisions are in the sum too, so a value that
// lands under another key, or a revision that changes, is caught as well.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const kvHeader = 20 // createRevision(8) modRevision(8) crc(4)

func kvSum(key []byte, head, value []byte) uint32 {
	h := crc32.Update(0, castagnoli, key)
	h = crc32.Update(h, castagnoli, head)
	return crc32.Update(h, castagnoli, value)
}

func encodeKV(kv KV) []byte {
	buf := make([]byte, kvHeader, kvHeader+len(kv.Value))
	binary.BigEndian.PutUint64(buf, uint64(kv.CreateRevision))
	binary.BigEndian.PutUint64(buf[8:], uint64(kv.ModRevision))
	binary.BigEndian.PutUint32(buf[16:], kvSum([]byte(kv.Key), buf[:16], kv.Value))
	return append(buf, kv.Value...)
}

// rawKV returns what can be read of a record, checked or not, and an error
// wrapping ErrCorruptRecord if its checksum does not match. It copies:
// bbolt's slices are valid only inside the transaction.
func rawKV(k, v []byte) (KV, error) {
	kv := KV{Key: string(k)}
	if len(v) >= 16 {
		kv.CreateRevision = int64(binary.BigEndian.Uint64(v))
		kv.ModRevision = int64(binary.BigEndian.Uint64(v[8:]))
	}
	if len(v) < kvHeader {
		kv.Value = append([]byte{}, v[min(len(v), 16):]...)
		return kv, fmt.Errorf("%w: %q is %d bytes, shorter than its header", ErrCorruptRecord, k, len(v))
	}
	kv.Value = append([]byte{}, v[kvHeader:]...)
	if want, got := binary.BigEndian.Uint32(v[16:]), kvSum(k, v[:16], v[kvHeader:]); want != got {
		return kv, fmt.Errorf("%w: %q: checksum %08x does not match its bytes (%08x)", ErrCorruptRecord, k, want, got)
	}
	return kv, nil
}

// decodeKV returns the record, or an error naming its key if it is damaged.
func decodeKV(k, v []byte) (KV, error) {
	kv, err := rawKV(k, v)
	if err != nil {
		return KV{}, err
	}
	return kv, nil
}

// getKV reads a record: ok says whether the key exists, err whether it is
// damaged (then kv holds what could be read).
func getKV(kvs *bolt.Bucket, key string) (kv KV, ok bool, err error) {
	v := kvs.Get([]byte(key))
	if v == nil {
		return KV{}, false, nil
	}
	kv, err = rawKV([]byte(key), v)
	return kv, true, err
}

// readRevisions reads a record's revisions without its value, unchecked:
// the checksum covers the value, which this does not read. Both formats
// begin with them.
func readRevisions(k, v []byte) (KV, bool) {
	if len(v) < 16 {
		return KV{}, false
	}
	return KV{
		Key:            string(k),
		CreateRevision: int64(binary.BigEndian.Uint64(v)),
		ModRevision:    int64(binary.BigEndian.Uint64(v[8:])),
	}, true
}

func eventSum(rev int64, body []byte) uint32 {
	h := crc32.Update(0, castagnoli, encodeInt(rev))
	return crc32.Update(h, castagnoli, body)
}

// encodeEvent encodes the event made at revision rev.
func encodeEvent(rev int64, ev Event) []byte {
	buf := make([]byte, 4, 4+1+8+binary.MaxVarintLen64+len(ev.KV.Key)+len(ev.KV.Value))
	buf = append(buf, byte(ev.Type))
	buf = binary.BigEndian.AppendUint64(buf, uint64(ev.KV.CreateRevision))
	buf = binary.AppendUvarint(buf, uint64(len(ev.KV.Key)))
	buf = append(buf, ev.KV.Key...)
	buf = append(buf, ev.KV.Value...)
	binary.BigEndian.PutUint32(buf, eventSum(rev, buf[4:]))
	return buf
}

// splitEvent returns the key and the value of an encoded event without
// copying or checking them.
func splitEvent(v []byte) (key, value []byte, err error) {
	if len(v) < 4 {
		return nil, nil, fmt.Errorf("%w: event is %d bytes", ErrCorrupt, len(v))
	}
	return splitEventBody(v[4:])
}

// splitEventBody splits an event without its checksum: type(1)
// createRevision(8) uvarint(len(key)) key value.
func splitEventBody(v []byte) (key, value []byte, err error) {
	if len(v) < 9 {
		return nil, nil, fmt.Errorf("%w: event is %d bytes", ErrCorrupt, len(v))
	}
	n, w := binary.Uvarint(v[9:])
	if w <= 0 || n > uint64(len(v)-9-w) {
		return nil, nil, fmt.Errorf("%w: event has a bad key length", ErrCorrupt)
	}
	start := 9 + w
	end := start + int(n)
	return v[start:end], v[end:], nil
}

// decodeEvent checks and copies the event at revision rev: bbolt's slices
// are valid only inside the transaction. A damaged event is an error
// wrapping ErrCorruptRecord that names the revision and, as far as it can
// be read, the key.
func decodeEvent(rev int64, v []byte) (Event, error) {
	key, value, err := splitEvent(v)
	if err != nil {
		return Event{}, fmt.Errorf("%w: event at revision %d: %w", ErrCorruptRecord, rev, err)
	}
	body := v[4:]
	if want, got := binary.BigEndian.Uint32(v), eventSum(rev, body); want != got {
		return Event{}, fmt.Errorf("%w: event at revision %d on %q: checksum %08x does not match its bytes (%08x)",
			ErrCorruptRecord, rev, key, want, got)
	}
	ev := Event{Type: EventType(body[0]), KV: KV{Key: string(key), ModRevision: rev}}
	switch ev.Type {
	case Put:
		ev.KV.CreateRevision = int64(binary.BigEndian.Uint64(body[1:]))
		ev.KV.Value = append([]byte{}, value...)
	case Delete:
	default:
		return Event{}, fmt.Errorf("%w: event at revision %d has type %d", ErrCorrupt, rev, body[0])
	}
	return ev, nil
}

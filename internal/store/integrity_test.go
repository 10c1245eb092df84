package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kiln-serve/kiln/internal/store"
)

// syncBuffer is a log destination safe for the watchers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// flipValue flips one byte in every copy of marker in the file at path (the
// record and its event in the log), as a bad disk or a stray write would.
// It fails the test if marker is not in the file.
func flipValue(t *testing.T, path string, marker []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for off := 0; ; {
		i := bytes.Index(data[off:], marker)
		if i < 0 {
			break
		}
		data[off+i+len(marker)/2] ^= 0x04
		off += i + len(marker)
		n++
	}
	if n == 0 {
		t.Fatalf("%q is not in %s", marker, path)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A byte flipped inside a record's value on disk is caught when the record
// is read: Get fails naming the key, List leaves the record out and logs it,
// a watcher replaying its event stops rather than deliver it, and Delete
// with Any removes it so that the key can be written again.
func TestBoltFlippedByteInValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	s, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	marker := []byte(`"ModelArn":"arn:aws:sagemaker:us-east-1:000000000000:model/victim"`)
	for _, kv := range []struct{ key, value string }{
		{"models/before", `{"ModelName":"before"}`},
		{"models/victim", `{"ModelName":"victim",` + string(marker) + `}`},
		{"models/zafter", `{"ModelName":"zafter"}`},
	} {
		if _, err := s.Put(ctx, kv.key, []byte(kv.value), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	flipValue(t, path, marker)

	var logs syncBuffer
	s = openBolt(t, path, &store.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "models/victim") {
		t.Errorf("Open logged nothing about the damaged record:\n%s", logs.String())
	}

	kv, err := s.Get(ctx, "models/victim")
	if !errors.Is(err, store.ErrCorruptRecord) || !strings.Contains(err.Error(), `"models/victim"`) {
		t.Fatalf("Get of the damaged record = %q, %v; want ErrCorruptRecord naming models/victim", kv.Value, err)
	}
	t.Logf("Get: %v", err)
	if kv, err := s.Get(ctx, "models/before"); err != nil || string(kv.Value) != `{"ModelName":"before"}` {
		t.Errorf("Get of a sound record = %q, %v", kv.Value, err)
	}

	kvs, _, err := s.List(ctx, "models/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	if strings.Join(keys, " ") != "models/before models/zafter" {
		t.Errorf("List = %v, want the two sound records only", keys)
	}
	if n := strings.Count(logs.String(), "leaving a damaged record out of a list"); n != 1 {
		t.Errorf("List logged the damaged record %d times, want once:\n%s", n, logs.String())
	}

	// The log holds a copy of the value in the event at revision 2.
	w, err := s.Watch(ctx, "models/", 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []store.Event
	for ev := range w {
		got = append(got, ev)
	}
	if len(got) != 1 || got[0].KV.Key != "models/before" {
		t.Errorf("watch from revision 1 delivered %+v; want the first event, then the channel closed", got)
	}
	if !strings.Contains(logs.String(), "event at revision 2") {
		t.Errorf("the watcher did not log the damaged event:\n%s", logs.String())
	}

	// Compare-and-swap cannot trust a damaged record's revision.
	if _, err := s.Put(ctx, "models/victim", []byte("x"), 2); !errors.Is(err, store.ErrCorruptRecord) {
		t.Errorf("Put with ifRevision over the damaged record: %v, want ErrCorruptRecord", err)
	}
	if _, err := s.Put(ctx, "models/victim", []byte("x"), 0); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Put with ifRevision 0 over the damaged record: %v, want ErrConflict", err)
	}
	if _, err := s.Delete(ctx, "models/victim", 2); !errors.Is(err, store.ErrCorruptRecord) {
		t.Errorf("Delete with ifRevision of the damaged record: %v, want ErrCorruptRecord", err)
	}
	if _, err := s.Delete(ctx, "models/victim", store.Any); err != nil {
		t.Fatalf("Delete with Any of the damaged record: %v", err)
	}
	if _, err := s.Get(ctx, "models/victim"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	rev, err := s.Put(ctx, "models/victim", []byte("new"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if kv, err := s.Get(ctx, "models/victim"); err != nil || string(kv.Value) != "new" || kv.CreateRevision != rev {
		t.Errorf("Get after writing again = %+v, %v", kv, err)
	}
}

// Put with Any overwrites a damaged record, as a new one.
func TestBoltPutOverDamagedRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	s, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "k", []byte("the-original-value"), 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	flipValue(t, path, []byte("the-original-value"))
	s = openBolt(t, path, nil)
	rev, err := s.Put(t.Context(), "k", []byte("v"), store.Any)
	if err != nil {
		t.Fatal(err)
	}
	if kv, err := s.Get(t.Context(), "k"); err != nil || string(kv.Value) != "v" || kv.CreateRevision != rev {
		t.Errorf("Get = %+v, %v; want v created at %d", kv, err, rev)
	}
}

// Scan shows damaged records too, flagged, for `kiln store`.
func TestBoltScan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	s, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a/1", "a/2", "b/1"} {
		if _, err := s.Put(t.Context(), k, []byte("value-of-"+k), 0); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	flipValue(t, path, []byte("value-of-a/2"))
	s = openBolt(t, path, nil)
	var got []string
	err = s.Scan(t.Context(), "a/", func(r store.Record) error {
		got = append(got, r.Key+"="+string(r.Value)+"/"+boolString(r.Err == nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "a/1=value-of-a/1/sound a/2=value-kf-a/2/damaged"; strings.Join(got, " ") != want {
		t.Errorf("Scan = %q, want %q", strings.Join(got, " "), want)
	}
}

func boolString(sound bool) string {
	if sound {
		return "sound"
	}
	return "damaged"
}

// Kiln creates its file whole, so an empty file, or a bbolt file without
// Kiln's buckets, is not a new store: it is refused, and left as it is. A
// missing file is a new store, created without leftovers.
func TestBoltRefusesEmptyOrForeignFile(t *testing.T) {
	t.Run("empty file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "kiln.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		checkCorrupt(t, path)
		if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
			t.Errorf("the refused file changed: %v, %v", fi.Size(), err)
		}
	})
	t.Run("bbolt file without buckets", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "kiln.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		checkCorrupt(t, path)
	})
	t.Run("bbolt file with a meta bucket of something else", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "kiln.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("meta"))
			if err != nil {
				return err
			}
			return b.Put([]byte("format"), []byte("not a number"))
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		checkCorrupt(t, path)
	})
	t.Run("new data dir", func(t *testing.T) {
		dir := t.TempDir()
		s := openBolt(t, filepath.Join(dir, "kiln.db"), nil)
		if _, err := s.Put(t.Context(), "k", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "kiln.db" {
			t.Errorf("data dir holds %v, want kiln.db alone", entries)
		}
	})
}

// A store written before checksums existed (format 1) opens, gets its
// checksums, and reads as before; a damaged byte in it is caught afterwards.
func TestBoltMigratesFormat1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	be := func(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }
	event := func(typ byte, create int64, key, value string) []byte {
		b := append([]byte{typ}, be(create)...)
		b = binary.AppendUvarint(b, uint64(len(key)))
		return append(append(b, key...), value...)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket([]byte("meta"))
		kv, _ := tx.CreateBucket([]byte("kv"))
		log, _ := tx.CreateBucket([]byte("log"))
		for k, v := range map[string]int64{"format": 1, "revision": 4, "compacted": 0} {
			if err := meta.Put([]byte(k), be(v)); err != nil {
				return err
			}
		}
		// a: created at 1, changed at 3; b: created at 2, deleted at 4.
		if err := kv.Put([]byte("m/a"), append(append(be(1), be(3)...), "format-one-value"...)); err != nil {
			return err
		}
		for rev, ev := range map[int64][]byte{
			1: event(1, 1, "m/a", "first"),
			2: event(1, 2, "m/b", "b"),
			3: event(1, 1, "m/a", "format-one-value"),
			4: event(2, 0, "m/b", ""),
		} {
			if err := log.Put(be(rev), ev); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	for i := range 2 { // migrated, then already migrated
		s, err := store.Open(path, &store.Options{LockTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		kv, err := s.Get(t.Context(), "m/a")
		if err != nil || string(kv.Value) != "format-one-value" || kv.CreateRevision != 1 || kv.ModRevision != 3 {
			t.Errorf("Get = %+v, %v", kv, err)
		}
		w, err := s.Watch(t.Context(), "m/", 1)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for range 4 {
			ev := <-w
			got = append(got, ev.Type.String()+" "+ev.KV.Key+" "+string(ev.KV.Value))
		}
		if want := "PUT m/a first|PUT m/b b|PUT m/a format-one-value|DELETE m/b "; strings.Join(got, "|") != want {
			t.Errorf("events = %q, want %q", strings.Join(got, "|"), want)
		}
		if rev, err := s.Put(t.Context(), "m/c", nil, 0); err != nil || rev != int64(5+2*i) {
			t.Errorf("Put after migration = %d, %v; want revision %d", rev, err, 5+2*i)
		}
		if _, err := s.Delete(t.Context(), "m/c", store.Any); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}

	flipValue(t, path, []byte("format-one-value"))
	s := openBolt(t, path, nil)
	if _, err := s.Get(t.Context(), "m/a"); !errors.Is(err, store.ErrCorruptRecord) {
		t.Errorf("Get of a damaged migrated record: %v, want ErrCorruptRecord", err)
	}
}

package store_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/kiln-serve/kiln/internal/store"
	"github.com/kiln-serve/kiln/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openBolt(t *testing.T, path string, opts *store.Options) *store.Bolt {
	t.Helper()
	s, err := store.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openBolt(t, filepath.Join(t.TempDir(), "kiln.db"), nil)
	})
}

// Unlike the suite, which allows a shared revision, Bolt's revisions are its
// own: 0 when empty, then one more per write.
func TestBoltRevisionsCount(t *testing.T) {
	ctx := t.Context()
	s := openBolt(t, filepath.Join(t.TempDir(), "kiln.db"), nil)
	if rev, err := s.Revision(ctx); err != nil || rev != 0 {
		t.Fatalf("Revision of a new store = %d, %v; want 0", rev, err)
	}
	for want := int64(1); want <= 5; want++ {
		rev, err := s.Put(ctx, "k", []byte("v"), store.Any)
		if err != nil || rev != want {
			t.Fatalf("Put = %d, %v; want revision %d", rev, err, want)
		}
	}
	if _, err := s.Put(ctx, "k", nil, 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Put of an existing key: got %v, want ErrConflict", err)
	}
	if rev, err := s.Delete(ctx, "k", 5); err != nil || rev != 6 {
		t.Fatalf("Delete = %d, %v; want revision 6 (a failed write takes no revision)", rev, err)
	}
	if _, rev, err := s.List(ctx, ""); err != nil || rev != 6 {
		t.Fatalf("List revision = %d, %v; want 6", rev, err)
	}
}

func TestBoltReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "kiln.db")
	s, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := s.Put(ctx, fmt.Sprintf("k/%d", i), []byte(fmt.Sprint(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Delete(ctx, "k/3", store.Any); err != nil {
		t.Fatal(err)
	}
	wantKVs, wantRev, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openBolt(t, path, nil)
	kvs, rev, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if rev != wantRev {
		t.Errorf("revision after reopen = %d, want %d", rev, wantRev)
	}
	if diff := cmp.Diff(wantKVs, kvs); diff != "" {
		t.Errorf("keys after reopen (-want +got):\n%s", diff)
	}
	// The history survives too: a watcher can start before the reopen.
	w, err := s.Watch(ctx, "k/3", 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []store.Event{
		{Type: store.Put, KV: store.KV{Key: "k/3", Value: []byte("3"), CreateRevision: 4, ModRevision: 4}},
		{Type: store.Delete, KV: store.KV{Key: "k/3", ModRevision: 11}},
	} {
		if diff := cmp.Diff(want, <-w); diff != "" {
			t.Errorf("replayed event (-want +got):\n%s", diff)
		}
	}
	if rev, err := s.Put(ctx, "k/new", nil, 0); err != nil || rev != wantRev+1 {
		t.Errorf("Put after reopen = %d, %v; want revision %d", rev, err, wantRev+1)
	}
}

func TestBoltCompacted(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "kiln.db")
	s, err := store.Open(path, &store.Options{History: 5})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := s.Put(ctx, "k", nil, store.Any); err != nil {
			t.Fatal(err)
		}
	}
	// Revisions 6..10 are kept.
	for _, from := range []int64{1, 5} {
		if _, err := s.Watch(ctx, "", from); !errors.Is(err, store.ErrCompacted) {
			t.Errorf("Watch from %d: got %v, want ErrCompacted", from, err)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	w, err := s.Watch(wctx, "", 6)
	if err != nil {
		t.Fatalf("Watch from the oldest kept revision: %v", err)
	}
	for want := int64(6); want <= 10; want++ {
		if ev := <-w; ev.KV.ModRevision != want {
			t.Fatalf("replayed revision %d, want %d", ev.KV.ModRevision, want)
		}
	}
	cancel()
	for range w {
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A smaller History applies from the next write on.
	s = openBolt(t, path, &store.Options{History: 2})
	if _, err := s.Watch(ctx, "", 6); err != nil {
		t.Fatalf("Watch from 6 after reopen, before any write: %v", err)
	}
	if _, err := s.Put(ctx, "k", nil, store.Any); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watch(ctx, "", 9); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Watch from 9 with History 2 at revision 11: got %v, want ErrCompacted", err)
	}
	if _, err := s.Watch(ctx, "", 10); err != nil {
		t.Errorf("Watch from 10 with History 2 at revision 11: %v", err)
	}
}

// A watcher that falls further behind than the history is closed; it never
// skips an event.
func TestBoltWatcherFallsBehind(t *testing.T) {
	ctx := t.Context()
	s := openBolt(t, filepath.Join(t.TempDir(), "kiln.db"), &store.Options{History: 10})
	w, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	for range n {
		if _, err := s.Put(ctx, "k", nil, store.Any); err != nil {
			t.Fatal(err)
		}
	}
	next := int64(1)
	for ev := range w {
		if ev.KV.ModRevision != next {
			t.Fatalf("got revision %d, want %d", ev.KV.ModRevision, next)
		}
		next++
	}
	if next > n {
		t.Errorf("the watcher saw all %d events; it should have been closed after falling behind", n)
	}
}

func TestBoltLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	openBolt(t, path, nil)
	start := time.Now()
	_, err := store.Open(path, &store.Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v", d)
	}
}

func TestBoltInvalidOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	for _, o := range []store.Options{{History: -1}, {LockTimeout: -time.Second}} {
		if s, err := store.Open(path, &o); err == nil {
			s.Close()
			t.Errorf("Open with %+v succeeded, want an error", o)
		}
	}
}

// Close while writers and watchers are busy: everything stops, cleanly.
func TestBoltCloseUnderLoad(t *testing.T) {
	ctx := t.Context()
	s, err := store.Open(filepath.Join(t.TempDir(), "kiln.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for {
				_, err := s.Put(ctx, fmt.Sprint(i), nil, store.Any)
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
		w, err := s.Watch(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range w {
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// A file that is damaged or foreign is refused with ErrCorrupt: never
// trusted, never a crash.
func TestBoltCorrupt(t *testing.T) {
	// A store of some size, so that the damage below hits real pages.
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	s, err := store.Open(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("x"), 1000)
	for i := range 100 {
		if _, err := s.Put(t.Context(), fmt.Sprintf("k/%03d", i), value, store.Any); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096 // bbolt uses the OS page size
	if len(data) < 10*page {
		t.Fatalf("test store is only %d bytes", len(data))
	}

	garbage := make([]byte, len(data))
	rand.NewChaCha8([32]byte{7}).Read(garbage)

	tests := []struct {
		name   string
		damage func() []byte
	}{
		{"truncated to half", func() []byte { return data[:len(data)/2] }},
		{"truncated to the meta pages", func() []byte { return data[:2*page] }},
		{"truncated inside a meta page", func() []byte { return data[:100] }},
		{"meta pages zeroed", func() []byte {
			d := bytes.Clone(data)
			clear(d[:2*page])
			return d
		}},
		{"data pages overwritten", func() []byte {
			d := bytes.Clone(data)
			copy(d[2*page:], garbage)
			return d
		}},
		{"data pages zeroed", func() []byte {
			d := bytes.Clone(data)
			clear(d[2*page:])
			return d
		}},
		// The freelist intact, the B-tree pages of the keys damaged: found by
		// reading the store, not by the checks on the file's layout.
		{"leaf pages overwritten", func() []byte { return damagePages(data, page, []byte("k/05"), garbage) }},
		{"leaf pages zeroed", func() []byte { return damagePages(data, page, []byte("k/05"), nil) }},
		{"leaf pages overwritten but their headers", func() []byte {
			d := damagePages(data, page, []byte("k/05"), garbage)
			for off := 2 * page; off < len(d); off += page {
				if !bytes.Equal(d[off:off+page], data[off:off+page]) {
					copy(d[off:off+16], data[off:]) // the page header
				}
			}
			return d
		}},
		{"branch and leaf pages zeroed", func() []byte { return damagePages(data, page, []byte("k/"), nil) }},
		{"not a bbolt file", func() []byte { return []byte(strings.Repeat("kiln\n", 2000)) }},
		{"random bytes", func() []byte { return garbage }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kiln.db")
			if err := os.WriteFile(path, tt.damage(), 0o600); err != nil {
				t.Fatal(err)
			}
			checkCorrupt(t, path)
		})
	}

	t.Run("a bbolt file of something else", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("widgets"))
			if err != nil {
				return err
			}
			return b.Put([]byte("w"), []byte("1"))
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		checkCorrupt(t, path)
	})
}

// damagePages overwrites, with junk or zeros, every page of data after the
// meta pages that contains marker.
func damagePages(data []byte, page int, marker, junk []byte) []byte {
	d := bytes.Clone(data)
	for off := 2 * page; off < len(d); off += page {
		p := d[off : off+page]
		if !bytes.Contains(p, marker) {
			continue
		}
		if junk == nil {
			clear(p)
		} else {
			copy(p, junk[off:])
		}
	}
	return d
}

func checkCorrupt(t *testing.T, path string) {
	t.Helper()
	// Twice: a failed Open must release the file.
	for range 2 {
		s, err := store.Open(path, &store.Options{LockTimeout: 100 * time.Millisecond})
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded, want ErrCorrupt")
		}
		t.Logf("Open: %v", err)
		if !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("Open: got %v, want ErrCorrupt", err)
		}
	}
}

const (
	helperEnv     = "KILN_STORE_HELPER"
	helperPathEnv = "KILN_STORE_HELPER_PATH"
)

// TestHelperProcess is not a test: TestBoltDurability runs the test binary
// again with it as a writer that acknowledges every write on stdout, and
// kills it.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "writer" {
		t.Skip("helper process for TestBoltDurability")
	}
	s, err := store.Open(os.Getenv(helperPathEnv), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	value := bytes.Repeat([]byte("v"), 512)
	for i := 0; ; i++ {
		key := fmt.Sprintf("k/%06d", i)
		rev, err := s.Put(context.Background(), key, value, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// os.Stdout is unbuffered: once this returns, the ack is out.
		fmt.Printf("ack %s %d\n", key, rev)
	}
}

// Every write the store acknowledged survives the writer being killed.
func TestBoltDurability(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	path := filepath.Join(t.TempDir(), "kiln.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=writer", helperPathEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	acks := map[string]int64{}
	var last int64
	sc := bufio.NewScanner(stdout)
	readAck := func() bool {
		if !sc.Scan() {
			return false
		}
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			return true // the test framework's own output
		}
		rev, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("bad ack %q", sc.Text())
		}
		if rev <= last {
			t.Fatalf("ack %q after revision %d", sc.Text(), last)
		}
		acks[f[1]], last = rev, rev
		return true
	}
	for len(acks) < 300 {
		if !readAck() {
			cmd.Wait()
			t.Fatalf("writer stopped after %d acks: %v\n%s", len(acks), sc.Err(), stderr.Bytes())
		}
	}

	// While the writer runs, its file is locked against this process.
	if _, err := store.Open(path, &store.Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Open while the writer runs: got %v, want ErrLocked", err)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Acks already written to the pipe count too.
	for readAck() {
	}
	err = cmd.Wait()
	killed = true
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("writer did not die of SIGKILL: %v\n%s", err, stderr.Bytes())
	}

	ctx := t.Context()
	s := openBolt(t, path, nil)
	for key, rev := range acks {
		kv, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("acknowledged write lost: %v", err)
		}
		if kv.ModRevision != rev {
			t.Fatalf("%s at revision %d, acknowledged at %d", key, kv.ModRevision, rev)
		}
	}
	head, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// At most one write was committed without its ack being read.
	if head != last && head != last+1 {
		t.Errorf("revision after the crash = %d, last acknowledged %d", head, last)
	}
	if rev, err := s.Put(ctx, "after", nil, 0); err != nil || rev != head+1 {
		t.Errorf("Put after the crash = %d, %v; want revision %d", rev, err, head+1)
	}
	t.Logf("%d acknowledged writes survived SIGKILL", len(acks))
}

// FuzzOpenDamaged overwrites bytes of a valid store's data pages (the meta
// pages intact, so bbolt trusts the file) and opens it: Open must either
// refuse the file with ErrCorrupt or give a store that reads without
// crashing.
func FuzzOpenDamaged(f *testing.F) {
	good := filepath.Join(f.TempDir(), "good.db")
	s, err := store.Open(good, nil)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 100 {
		if _, err := s.Put(context.Background(), fmt.Sprintf("k/%03d", i), bytes.Repeat([]byte{'x'}, 200), store.Any); err != nil {
			f.Fatal(err)
		}
	}
	s.Close()
	data, err := os.ReadFile(good)
	if err != nil {
		f.Fatal(err)
	}
	const page = 4096
	f.Add(uint32(0), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(uint32(16), []byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint32(page+20), bytes.Repeat([]byte{0x7f}, 64))
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		d := bytes.Clone(data)
		copy(d[2*page+int(off)%(len(d)-2*page):], patch)
		path := filepath.Join(t.TempDir(), "kiln.db")
		if err := os.WriteFile(path, d, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(path, nil)
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("Open: got %v, want ErrCorrupt", err)
			}
			return
		}
		defer s.Close()
		if _, _, err := s.List(t.Context(), ""); err != nil {
			t.Fatalf("List of a store that opened: %v", err)
		}
	})
}

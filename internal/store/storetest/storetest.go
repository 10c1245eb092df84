// Package storetest is the conformance suite for store.Store: every
// implementation runs it from its own tests, with
//
//	storetest.Run(t, func(t *testing.T) store.Store { ... })
//
// and passes it unchanged. Implementations check for leaked goroutines
// themselves (goleak in their TestMain), since only they know what to ignore.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kiln-serve/kiln/internal/store"
)

// wait bounds every wait for an event, so a broken store fails a test
// instead of hanging it. Nothing waits this long when the store works.
const wait = 10 * time.Second

// Run runs the suite. open must return a new, empty store each time it is
// called; Run closes the store when the test that opened it ends, and may
// close it earlier, so Close must accept being called twice. The subtests
// run in parallel.
//
// The suite assumes nothing about revision numbers but their order, so a
// store whose revision is shared with other writers (one etcd cluster
// holding several stores under different prefixes) passes it too: a
// revision is only ever compared with an earlier one, and "changed nothing"
// is checked by reading the keys and watching for events.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Empty", testEmpty},
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"PutUnconditional", testPutUnconditional},
		{"PutConflict", testPutConflict},
		{"Delete", testDelete},
		{"DeleteConflict", testDeleteConflict},
		{"InvalidArguments", testInvalidArguments},
		{"RevisionsIncrease", testRevisionsIncrease},
		{"ValuesAreCopies", testValuesAreCopies},
		{"List", testList},
		{"Keys", testKeys},
		{"LargeValue", testLargeValue},
		{"CanceledContext", testCanceledContext},
		{"Closed", testClosed},
		{"WatchFromNow", testWatchFromNow},
		{"WatchFromRevision", testWatchFromRevision},
		{"WatchFromListRevision", testWatchFromListRevision},
		{"WatchSlowReader", testWatchSlowReader},
		{"WatchCancel", testWatchCancel},
		{"WatchStoreClosed", testWatchStoreClosed},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentCAS", testConcurrentCAS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

func testEmpty(t *testing.T, s store.Store) {
	ctx := t.Context()
	rev, err := s.Revision(ctx)
	if err != nil || rev < 0 {
		t.Errorf("Revision of a new store = %d, %v; want >= 0, nil", rev, err)
	}
	kvs, _, err := s.List(ctx, "")
	if err != nil || len(kvs) != 0 {
		t.Errorf(`List("") of a new store = %v, %v; want nothing`, kvs, err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get in a new store: got %v, want ErrNotFound", err)
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	put(t, s, "models/a", "x", 0)
	_, err := s.Get(t.Context(), "models/b")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get missing key: got %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "models/b") {
		t.Errorf("error %q does not name the key", err)
	}
}

func testPutGet(t *testing.T, s store.Store) {
	r1 := put(t, s, "models/a", "v1", 0)
	if r1 <= 0 {
		t.Fatalf("first Put returned revision %d, want > 0", r1)
	}
	checkGet(t, s, store.KV{Key: "models/a", Value: []byte("v1"), CreateRevision: r1, ModRevision: r1})

	r2 := put(t, s, "models/a", "v2", r1)
	if r2 <= r1 {
		t.Fatalf("update returned revision %d, want > %d", r2, r1)
	}
	checkGet(t, s, store.KV{Key: "models/a", Value: []byte("v2"), CreateRevision: r1, ModRevision: r2})

	checkRevision(t, s, r2)

	r3 := put(t, s, "models/empty", "", 0)
	kv := get(t, s, "models/empty")
	if len(kv.Value) != 0 || kv.ModRevision != r3 {
		t.Errorf("empty value: got %+v, want no bytes at revision %d", kv, r3)
	}
}

func testPutUnconditional(t *testing.T, s store.Store) {
	r1 := put(t, s, "k", "v1", store.Any)
	checkGet(t, s, store.KV{Key: "k", Value: []byte("v1"), CreateRevision: r1, ModRevision: r1})
	r2 := put(t, s, "k", "v2", store.Any)
	checkGet(t, s, store.KV{Key: "k", Value: []byte("v2"), CreateRevision: r1, ModRevision: r2})
}

func testPutConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	r1 := put(t, s, "k", "v1", 0)
	r2 := put(t, s, "k", "v2", r1)
	want := store.KV{Key: "k", Value: []byte("v2"), CreateRevision: r1, ModRevision: r2}
	w := watch(t, s, "", 0)

	tests := []struct {
		name       string
		key        string
		ifRevision int64
	}{
		{"create existing", "k", 0},
		{"stale revision", "k", r1},
		{"future revision", "k", r2 + 100},
		{"revision of a missing key", "missing", r1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev, err := s.Put(ctx, tt.key, []byte("loser"), tt.ifRevision)
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("Put(%q, ifRevision %d) = %d, %v; want ErrConflict", tt.key, tt.ifRevision, rev, err)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name the key", err)
			}
			checkGet(t, s, want)
			if _, err := s.Get(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a failed Put created the key: Get = %v", err)
			}
		})
	}
	checkNoEvent(t, w)
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	r1 := put(t, s, "a", "1", 0)
	put(t, s, "b", "1", 0)
	r3, err := s.Delete(ctx, "a", r1)
	if err != nil || r3 <= r1 {
		t.Fatalf("Delete(a, %d) = %d, %v; want a revision > %d", r1, r3, err, r1)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: got %v, want ErrNotFound", err)
	}
	r4, err := s.Delete(ctx, "b", store.Any)
	if err != nil || r4 <= r3 {
		t.Fatalf("Delete(b, Any) = %d, %v; want a revision > %d", r4, err, r3)
	}
	checkRevision(t, s, r4)

	// A key created again is a new key: its CreateRevision starts over.
	r5 := put(t, s, "a", "2", 0)
	checkGet(t, s, store.KV{Key: "a", Value: []byte("2"), CreateRevision: r5, ModRevision: r5})
}

func testDeleteConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	r1 := put(t, s, "k", "v1", 0)
	r2 := put(t, s, "k", "v2", r1)
	want := store.KV{Key: "k", Value: []byte("v2"), CreateRevision: r1, ModRevision: r2}
	w := watch(t, s, "", 0)

	tests := []struct {
		name       string
		key        string
		ifRevision int64
		wantErr    error
	}{
		{"stale revision", "k", r1, store.ErrConflict},
		{"future revision", "k", r2 + 100, store.ErrConflict},
		{"missing key", "missing", store.Any, store.ErrNotFound},
		{"missing key with revision", "missing", r2, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev, err := s.Delete(ctx, tt.key, tt.ifRevision)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Delete(%q, %d) = %d, %v; want %v", tt.key, tt.ifRevision, rev, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name the key", err)
			}
			checkGet(t, s, want)
		})
	}
	checkNoEvent(t, w)
}

func testInvalidArguments(t *testing.T, s store.Store) {
	ctx := t.Context()
	r1 := put(t, s, "k", "v", 0)
	w := watch(t, s, "", 0)
	if _, err := s.Delete(ctx, "k", 0); err == nil {
		t.Error("Delete with ifRevision 0 succeeded, want an error")
	}
	if _, err := s.Put(ctx, "", []byte("v"), store.Any); err == nil {
		t.Error("Put of the empty key succeeded, want an error")
	}
	if _, err := s.Put(ctx, "k", []byte("v"), -2); err == nil {
		t.Error("Put with ifRevision -2 succeeded, want an error")
	}
	if _, err := s.Watch(ctx, "", -1); err == nil {
		t.Error("Watch from revision -1 succeeded, want an error")
	}
	checkGet(t, s, store.KV{Key: "k", Value: []byte("v"), CreateRevision: r1, ModRevision: r1})
	checkNoEvent(t, w)
}

func testRevisionsIncrease(t *testing.T, s store.Store) {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	live := map[string]int64{} // key → ModRevision
	var last int64
	for i := range 60 {
		key := fmt.Sprintf("k%d", rng.IntN(8))
		var rev int64
		var err error
		mod, ok := live[key]
		switch {
		case !ok:
			rev, err = s.Put(ctx, key, []byte{byte(i)}, 0)
			live[key] = rev
		case rng.IntN(3) == 0:
			rev, err = s.Delete(ctx, key, mod)
			delete(live, key)
		default:
			rev, err = s.Put(ctx, key, []byte{byte(i)}, mod)
			live[key] = rev
		}
		if err != nil {
			t.Fatalf("op %d on %q: %v", i, key, err)
		}
		if rev <= last {
			t.Fatalf("op %d returned revision %d after %d; revisions must strictly increase", i, rev, last)
		}
		last = rev
		checkRevision(t, s, last)
	}
	kvs, rev, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if rev < last {
		t.Errorf("List revision %d is older than the last write, %d", rev, last)
	}
	got := map[string]int64{}
	for _, kv := range kvs {
		got[kv.Key] = kv.ModRevision
	}
	if diff := cmp.Diff(live, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("keys and ModRevisions (-want +got):\n%s", diff)
	}
}

func testValuesAreCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	v := []byte("original")
	rev := put(t, s, "k", string(v), 0)
	if _, err := s.Put(ctx, "k2", v, 0); err != nil {
		t.Fatal(err)
	}
	copy(v, "mutated!")
	kv := get(t, s, "k2")
	if string(kv.Value) != "original" {
		t.Errorf("the store kept the caller's slice: got %q after the caller changed it", kv.Value)
	}
	copy(kv.Value, "mutated!")
	kvs, _, err := s.List(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(kvs[0].Value, "mutated!")
	checkGet(t, s, store.KV{Key: "k", Value: []byte("original"), CreateRevision: rev, ModRevision: rev})
	if kv := get(t, s, "k2"); string(kv.Value) != "original" {
		t.Errorf("Get returned the store's own bytes: got %q after the caller changed them", kv.Value)
	}
}

func testList(t *testing.T, s store.Store) {
	ctx := t.Context()
	keys := []string{"a", "a/1", "a/2", "a/10", "ab", "b", "b/1", "a/1/x"}
	rng := rand.New(rand.NewPCG(3, 4))
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	all := map[string]store.KV{}
	for _, k := range keys {
		rev := put(t, s, k, "value of "+k, 0)
		all[k] = store.KV{Key: k, Value: []byte("value of " + k), CreateRevision: rev, ModRevision: rev}
	}
	var head int64
	for _, kv := range all {
		head = max(head, kv.ModRevision)
	}

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a", "a/1", "a/1/x", "a/10", "a/2", "ab", "b", "b/1"}},
		{"a/", []string{"a/1", "a/1/x", "a/10", "a/2"}},
		{"a", []string{"a", "a/1", "a/1/x", "a/10", "a/2", "ab"}},
		{"a/1", []string{"a/1", "a/1/x", "a/10"}},
		{"a/1/", []string{"a/1/x"}},
		{"b/", []string{"b/1"}},
		{"ab", []string{"ab"}},
		{"c", nil},
		{"a/3", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("prefix %q", tt.prefix), func(t *testing.T) {
			got, rev, err := s.List(ctx, tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			if rev < head {
				t.Errorf("List revision = %d, older than the last write, %d", rev, head)
			}
			var want []store.KV
			for _, k := range tt.want {
				want = append(want, all[k])
			}
			if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
				t.Errorf("List(%q) (-want +got):\n%s", tt.prefix, diff)
			}
		})
	}
}

// testKeys: Keys is List without the values, with the same keys and
// revisions, and follows later writes.
func testKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, k := range []string{"m/b", "m/a", "n/a", "m/c"} {
		put(t, s, k, strings.Repeat("v", 1000), 0)
	}
	put(t, s, "m/a", "changed", store.Any)
	if _, err := s.Delete(ctx, "m/c", store.Any); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"", "m/", "n/", "o/"} {
		list, listRev, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		keys, keysRev, err := s.Keys(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if keysRev != listRev {
			t.Errorf("Keys(%q) revision = %d, List's = %d", prefix, keysRev, listRev)
		}
		for i := range list {
			list[i].Value = nil
		}
		if diff := cmp.Diff(list, keys, cmpOpts); diff != "" {
			t.Errorf("Keys(%q) differs from List without values (-list +keys):\n%s", prefix, diff)
		}
		for _, kv := range keys {
			if kv.Value != nil {
				t.Errorf("Keys(%q): %s has a value", prefix, kv.Key)
			}
		}
	}
	keys, _, err := s.Keys(ctx, "m/")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(keys); got != 2 || keys[0].Key != "m/a" || keys[1].Key != "m/b" ||
		keys[0].CreateRevision >= keys[0].ModRevision {
		t.Errorf("Keys(m/) = %+v, want m/a (modified after creation), m/b", keys)
	}
}

func testLargeValue(t *testing.T, s store.Store) {
	ctx := t.Context()
	big := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{5, 6}).Read(big)
	w := watch(t, s, "big/", 0)
	rev := put(t, s, "big/a", string(big), 0)
	want := store.KV{Key: "big/a", Value: big, CreateRevision: rev, ModRevision: rev}
	checkGet(t, s, want)
	kvs, _, err := s.List(ctx, "big/")
	if err != nil || len(kvs) != 1 || !bytes.Equal(kvs[0].Value, big) {
		t.Errorf("List did not return the 1 MiB value intact (err %v)", err)
	}
	ev := recv(t, w)
	if ev.Type != store.Put || !bytes.Equal(ev.KV.Value, big) {
		t.Errorf("Watch event: %v of %d bytes, want the 1 MiB Put", ev.Type, len(ev.KV.Value))
	}
	// Replay from the log, too.
	if ev := recv(t, watch(t, s, "big/", rev)); !bytes.Equal(ev.KV.Value, big) {
		t.Errorf("replayed event has %d bytes, want the 1 MiB value", len(ev.KV.Value))
	}
}

func testCanceledContext(t *testing.T, s store.Store) {
	rev := put(t, s, "k", "v", 0)
	w := watch(t, s, "", 0)
	defer checkNoEvent(t, w)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Put(ctx, "k2", []byte("v"), store.Any); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: got %v, want context.Canceled", err)
	}
	if _, err := s.Delete(ctx, "k", store.Any); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a canceled context: got %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context: got %v, want context.Canceled", err)
	}
	if _, _, err := s.List(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled context: got %v, want context.Canceled", err)
	}
	if _, err := s.Watch(ctx, "", 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch with a canceled context: got %v, want context.Canceled", err)
	}
	checkGet(t, s, store.KV{Key: "k", Value: []byte("v"), CreateRevision: rev, ModRevision: rev})
	if _, err := s.Get(t.Context(), "k2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Put with a canceled context wrote the key: Get = %v", err)
	}
}

func testClosed(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, "k", "v", 0)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	checks := map[string]error{}
	_, checks["Get"] = s.Get(ctx, "k")
	_, _, checks["List"] = s.List(ctx, "")
	_, checks["Put"] = s.Put(ctx, "k", nil, store.Any)
	_, checks["Delete"] = s.Delete(ctx, "k", store.Any)
	_, checks["Watch"] = s.Watch(ctx, "", 0)
	_, checks["Revision"] = s.Revision(ctx)
	for op, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", op, err)
		}
	}
}

func testWatchFromNow(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, "w/before", "x", 0)
	w := watch(t, s, "w/", 0)

	r1 := put(t, s, "w/a", "1", 0)
	put(t, s, "wx", "other prefix", 0)
	put(t, s, "x/a", "other prefix", 0)
	r2 := put(t, s, "w/a", "2", r1)
	r3, err := s.Delete(ctx, "w/a", r2)
	if err != nil {
		t.Fatal(err)
	}
	r4 := put(t, s, "w/b", "3", 0)

	want := []store.Event{
		{Type: store.Put, KV: store.KV{Key: "w/a", Value: []byte("1"), CreateRevision: r1, ModRevision: r1}},
		{Type: store.Put, KV: store.KV{Key: "w/a", Value: []byte("2"), CreateRevision: r1, ModRevision: r2}},
		{Type: store.Delete, KV: store.KV{Key: "w/a", ModRevision: r3}},
		{Type: store.Put, KV: store.KV{Key: "w/b", Value: []byte("3"), CreateRevision: r4, ModRevision: r4}},
	}
	checkEvents(t, w, want)
	checkNoEvent(t, w)
}

func testWatchFromRevision(t *testing.T, s store.Store) {
	ctx := t.Context()
	put(t, s, "p/old", "x", 0)
	r1 := put(t, s, "p/a", "1", 0)
	put(t, s, "q/a", "other prefix", 0)
	r2 := put(t, s, "p/a", "2", r1)
	r3, err := s.Delete(ctx, "p/a", r2)
	if err != nil {
		t.Fatal(err)
	}
	w := watch(t, s, "p/", r1)
	r4 := put(t, s, "p/b", "live", 0)

	want := []store.Event{
		{Type: store.Put, KV: store.KV{Key: "p/a", Value: []byte("1"), CreateRevision: r1, ModRevision: r1}},
		{Type: store.Put, KV: store.KV{Key: "p/a", Value: []byte("2"), CreateRevision: r1, ModRevision: r2}},
		{Type: store.Delete, KV: store.KV{Key: "p/a", ModRevision: r3}},
		{Type: store.Put, KV: store.KV{Key: "p/b", Value: []byte("live"), CreateRevision: r4, ModRevision: r4}},
	}
	checkEvents(t, w, want)
	checkNoEvent(t, w)

	// From the revision of the delete: the events at and after it only.
	checkEvents(t, watch(t, s, "p/", r3), want[2:])
	// From a revision that is not the prefix's: the next event of the prefix.
	checkEvents(t, watch(t, s, "p/", r1+1), want[1:])
	// From the revision after the newest: only what comes next.
	w = watch(t, s, "", r4+1)
	r5 := put(t, s, "z", "next", 0)
	checkEvents(t, w, []store.Event{{Type: store.Put, KV: store.KV{Key: "z", Value: []byte("next"), CreateRevision: r5, ModRevision: r5}}})
}

// The informer pattern: List, then Watch from the List revision+1, while
// writers keep writing; together they see each write exactly once.
func testWatchFromListRevision(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 60
	for i := range n / 3 {
		put(t, s, fmt.Sprintf("l/%02d", i), "v", 0)
	}
	done := make(chan error, 1)
	go func() {
		for i := n / 3; i < n; i++ {
			if _, err := s.Put(ctx, fmt.Sprintf("l/%02d", i), []byte("v"), 0); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	kvs, rev, err := s.List(ctx, "l/")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, kv := range kvs {
		seen[kv.Key] = true
	}
	w := watch(t, s, "l/", rev+1)
	for len(seen) < n {
		ev := recv(t, w)
		if ev.KV.ModRevision <= rev {
			t.Fatalf("event at revision %d, but watching from %d", ev.KV.ModRevision, rev+1)
		}
		if seen[ev.KV.Key] {
			t.Fatalf("%s seen twice (List at revision %d, then event at %d)", ev.KV.Key, rev, ev.KV.ModRevision)
		}
		seen[ev.KV.Key] = true
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkNoEvent(t, w)
}

// A watcher that does not read must not hold up writers, and must lose
// nothing once it reads; another watcher of the same prefix, reading as fast
// as it can meanwhile, sees the same.
func testWatchSlowReader(t *testing.T, s store.Store) {
	const n = 400
	slow := watch(t, s, "s/", 0)
	fast := watch(t, s, "s/", 0)

	fastGot := make(chan []store.Event, 1)
	go func() {
		var evs []store.Event
		defer func() { fastGot <- evs }()
		for len(evs) < n {
			select {
			case ev, ok := <-fast:
				if !ok {
					return
				}
				evs = append(evs, ev)
			case <-time.After(wait):
				return
			}
		}
	}()

	want := make([]store.Event, n)
	created := map[string]int64{}
	for i := range n {
		key := fmt.Sprintf("s/%d", i%7)
		value := fmt.Sprint(i)
		rev := put(t, s, key, value, store.Any)
		if created[key] == 0 {
			created[key] = rev
		}
		want[i] = store.Event{Type: store.Put, KV: store.KV{Key: key, Value: []byte(value), CreateRevision: created[key], ModRevision: rev}}
		if i%50 == 0 {
			put(t, s, "other", "noise", store.Any)
		}
	}
	if diff := cmp.Diff(want, <-fastGot, cmpOpts); diff != "" {
		t.Errorf("fast watcher (-want +got):\n%s", diff)
	}
	var got []store.Event
	for range n {
		got = append(got, recv(t, slow))
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("slow watcher (-want +got):\n%s", diff)
	}
	checkNoEvent(t, slow)
}

func testWatchCancel(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	w, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Events the watcher is holding for a reader that never comes.
	for i := range 5 {
		put(t, s, fmt.Sprint(i), "v", 0)
	}
	cancel()
	checkClosed(t, w, 5)

	// A watcher with nothing to deliver stops too.
	ctx, cancel = context.WithCancel(t.Context())
	w, err = s.Watch(ctx, "quiet/", 0)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	checkClosed(t, w, 0)
}

func testWatchStoreClosed(t *testing.T, s store.Store) {
	busy := watch(t, s, "", 0)
	put(t, s, "k", "v", 0)
	idle := watch(t, s, "idle/", 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkClosed(t, busy, 1)
	checkClosed(t, idle, 0)
}

func testConcurrentCreate(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 16
	w := watch(t, s, "", 0)
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = s.Put(ctx, "leader", []byte(fmt.Sprint(i)), 0)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both created the key", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("writer %d: got %v, want ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the key")
	}
	if kv := get(t, s, "leader"); string(kv.Value) != fmt.Sprint(winner) {
		t.Errorf("value = %q, want the winner's %q", kv.Value, fmt.Sprint(winner))
	}
	// Exactly one write happened.
	if ev := recv(t, w); string(ev.KV.Value) != fmt.Sprint(winner) {
		t.Errorf("event value = %q, want the winner's %q", ev.KV.Value, fmt.Sprint(winner))
	}
	checkNoEvent(t, w)
}

// Writers increment a counter with read-modify-write and CAS; no increment
// may be lost.
func testConcurrentCAS(t *testing.T, s store.Store) {
	ctx := t.Context()
	const writers, increments = 4, 10
	put(t, s, "counter", "0", 0)
	w := watch(t, s, "counter", 0)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := 0; i < increments; {
				kv, err := s.Get(ctx, "counter")
				if err != nil {
					t.Error(err)
					return
				}
				n, err := strconv.Atoi(string(kv.Value))
				if err != nil {
					t.Error(err)
					return
				}
				_, err = s.Put(ctx, "counter", []byte(fmt.Sprint(n+1)), kv.ModRevision)
				switch {
				case errors.Is(err, store.ErrConflict):
				case err != nil:
					t.Error(err)
					return
				default:
					i++
				}
			}
		})
	}
	wg.Wait()
	const total = writers * increments
	if kv := get(t, s, "counter"); string(kv.Value) != fmt.Sprint(total) {
		t.Errorf("counter = %s, want %d", kv.Value, total)
	}
	var last int64
	for i := 1; i <= total; i++ {
		ev := recv(t, w)
		if string(ev.KV.Value) != fmt.Sprint(i) || ev.KV.ModRevision <= last {
			t.Fatalf("event %d: value %q at revision %d (previous %d); want %d at a higher revision",
				i, ev.KV.Value, ev.KV.ModRevision, last, i)
		}
		last = ev.KV.ModRevision
	}
	checkNoEvent(t, w)
}

// cmpOpts compare KVs with bytes.Equal on their values: cmp's reflection
// over a 1 MiB value takes seconds. A nil value equals an empty one.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b store.KV) bool {
		return a.Key == b.Key && bytes.Equal(a.Value, b.Value) &&
			a.CreateRevision == b.CreateRevision && a.ModRevision == b.ModRevision
	}),
	cmpopts.EquateEmpty(),
}

func put(t *testing.T, s store.Store, key, value string, ifRevision int64) int64 {
	t.Helper()
	rev, err := s.Put(t.Context(), key, []byte(value), ifRevision)
	if err != nil {
		t.Fatalf("Put(%q, ifRevision %d): %v", key, ifRevision, err)
	}
	return rev
}

func get(t *testing.T, s store.Store, key string) store.KV {
	t.Helper()
	kv, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return kv
}

func checkGet(t *testing.T, s store.Store, want store.KV) {
	t.Helper()
	if diff := cmp.Diff(want, get(t, s, want.Key), cmpOpts); diff != "" {
		t.Errorf("Get(%q) (-want +got):\n%s", want.Key, diff)
	}
}

// checkRevision checks that the store's revision is at least that of the
// last write.
func checkRevision(t *testing.T, s store.Store, last int64) {
	t.Helper()
	if rev, err := s.Revision(t.Context()); err != nil || rev < last {
		t.Errorf("Revision = %d, %v; want >= %d, the last write's", rev, err, last)
	}
}

// watch starts a watch that ends with the test.
func watch(t *testing.T, s store.Store, prefix string, from int64) <-chan store.Event {
	t.Helper()
	w, err := s.Watch(t.Context(), prefix, from)
	if err != nil {
		t.Fatalf("Watch(%q, %d): %v", prefix, from, err)
	}
	return w
}

func recv(t *testing.T, w <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-w:
		if !ok {
			t.Fatal("watch channel closed, want an event")
		}
		return ev
	case <-time.After(wait):
		t.Fatalf("no event after %v", wait)
	}
	panic("unreachable")
}

func checkEvents(t *testing.T, w <-chan store.Event, want []store.Event) {
	t.Helper()
	var got []store.Event
	for range want {
		got = append(got, recv(t, w))
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// checkNoEvent checks that nothing more arrives. A short wait suffices:
// the events that came before were as quick to deliver.
func checkNoEvent(t *testing.T, w <-chan store.Event) {
	t.Helper()
	select {
	case ev, ok := <-w:
		if ok {
			t.Errorf("unexpected event %v %s@%d", ev.Type, ev.KV.Key, ev.KV.ModRevision)
		} else {
			t.Error("watch channel closed, want it open")
		}
	case <-time.After(50 * time.Millisecond):
	}
}

// checkClosed checks that w closes, after at most max pending events.
func checkClosed(t *testing.T, w <-chan store.Event, max int) {
	t.Helper()
	timeout := time.After(wait)
	for n := 0; ; n++ {
		select {
		case _, ok := <-w:
			if !ok {
				return
			}
			if n >= max {
				t.Fatalf("got more than %d events from a watch that should be closing", max)
			}
		case <-timeout:
			t.Fatalf("watch channel still open %v after it should have closed", wait)
		}
	}
}

package store

import (
	"bytes"
	"testing"
)

func TestEventEncoding(t *testing.T) {
	for _, ev := range []Event{
		{Type: Put, KV: KV{Key: "models/a", Value: []byte(`{"name":"a"}`), CreateRevision: 3, ModRevision: 9}},
		{Type: Put, KV: KV{Key: "k", CreateRevision: 9, ModRevision: 9}},
		{Type: Delete, KV: KV{Key: "models/a", ModRevision: 10}},
		{Type: Put, KV: KV{Key: string(bytes.Repeat([]byte("k"), 300)), Value: []byte("v"), CreateRevision: 1, ModRevision: 2}},
	} {
		got, err := decodeEvent(ev.KV.ModRevision, encodeEvent(ev.KV.ModRevision, ev))
		if err != nil {
			t.Fatalf("decodeEvent(encodeEvent(%+v)): %v", ev, err)
		}
		if got.Type != ev.Type || got.KV.Key != ev.KV.Key || !bytes.Equal(got.KV.Value, ev.KV.Value) ||
			got.KV.CreateRevision != ev.KV.CreateRevision || got.KV.ModRevision != ev.KV.ModRevision {
			t.Errorf("round trip: got %+v, want %+v", got, ev)
		}
	}
}

// FuzzDecodeEvent: whatever the bytes in the log, decoding returns an error
// or an event, never panics, and a decoded event survives encoding again.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(encodeEvent(7, Event{Type: Put, KV: KV{Key: "a", Value: []byte("v"), CreateRevision: 1}}))
	f.Add(encodeEvent(7, Event{Type: Delete, KV: KV{Key: "a"}}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		ev, err := decodeEvent(7, v)
		if err != nil {
			return
		}
		back, err := decodeEvent(7, encodeEvent(7, ev))
		if err != nil || back.Type != ev.Type || back.KV.Key != ev.KV.Key ||
			!bytes.Equal(back.KV.Value, ev.KV.Value) || back.KV.CreateRevision != ev.KV.CreateRevision {
			t.Errorf("%x decodes to %+v, which encodes and decodes to %+v, %v", v, ev, back, err)
		}
	})
}

package gateway

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// Request bodies are read whole into pooled buffers before they are sent, so
// that a request whose instance refused the connection can go to another.
// Buffers that grew past maxPooledBody are left to the collector: a few
// 6 MiB requests should not pin 6 MiB per processor for good.
const maxPooledBody = 1 << 20

// copyBufferSize is the size of the buffers model responses are copied
// through; as large as the transport's read buffer, so a read can empty it.
const copyBufferSize = 32 << 10

var (
	bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	copyPool = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}
)

func getBody() *bytes.Buffer { return bodyPool.Get().(*bytes.Buffer) }

func putBody(b *bytes.Buffer) {
	if b.Cap() > maxPooledBody {
		return
	}
	b.Reset()
	bodyPool.Put(b)
}

// upstreamBody is one reading of the buffered request body. The transport
// may read and close a request body after RoundTrip has returned (when the
// model answers before it has read the whole request), so the buffer goes
// back to the pool only once every reading of it has been closed.
type upstreamBody struct {
	bytes.Reader
	open   *atomic.Int32
	closed atomic.Bool
}

func newUpstreamBody(b []byte, open *atomic.Int32) *upstreamBody {
	open.Add(1)
	u := &upstreamBody{open: open}
	u.Reset(b)
	return u
}

func (u *upstreamBody) Close() error {
	if u.closed.CompareAndSwap(false, true) {
		u.open.Add(-1)
	}
	return nil
}

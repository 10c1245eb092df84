package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The fast path's client for models: HTTP/1.1 over keep-alive connections
// that each instance pools. A request is written with one system call (or
// one writev for a large body) and its answer read on the calling goroutine;
// net/http's Transport hands every request to two goroutines of its own and
// builds header maps on both sides, which is most of its cost at this size.

// upstreamBufSize is the read buffer of a model connection: the whole head
// of the model's answer must fit in it.
const upstreamBufSize = 32 << 10

// maxIdlePerInstance bounds the kept-alive connections to one instance.
const maxIdlePerInstance = 1024

// upstreamConn is one keep-alive connection to a model instance.
type upstreamConn struct {
	conn net.Conn
	// raw, if not nil, lets the connection send a small request with the
	// first read of its answer (see upstreamReader); pending is that
	// request until then.
	raw     syscall.RawConn
	pending []byte
	br      *bufio.Reader // reads through upstreamReader
	buf     []byte        // the request head, and small bodies with it
	reused  bool          // it served a request before this one
	sent    int64         // bytes of requests written on it
}

// newUpstreamConn wraps a connection to a model.
func newUpstreamConn(c net.Conn) *upstreamConn {
	uc := &upstreamConn{conn: c, raw: rawOf(c), buf: make([]byte, 0, 512)}
	uc.br = bufio.NewReaderSize(upstreamReader{uc}, upstreamBufSize)
	return uc
}

// rawOf returns the connection's RawConn, or nil if it has none.
func rawOf(c net.Conn) syscall.RawConn {
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			return raw
		}
	}
	return nil
}

// upstreamReader reads a model's answers. With a request pending, it
// writes the request and then waits for the answer without first trying a
// read, which could only fail: Go's poller forgets the socket's readiness
// when a read begins, but this read begins before the request is written,
// so the answer's arrival is still seen. That saves a failed read system
// call on every invocation.
type upstreamReader struct{ uc *upstreamConn }

func (r upstreamReader) Read(p []byte) (int, error) {
	uc := r.uc
	b := uc.pending
	if b == nil {
		return uc.conn.Read(p)
	}
	uc.pending = nil
	var n, wrote int
	var rerr, werr error
	err := uc.raw.Read(func(fd uintptr) bool {
		for wrote < len(b) {
			k, e := syscall.Write(int(fd), b[wrote:])
			if e == syscall.EINTR {
				continue
			}
			if e != nil {
				werr = e
				return true
			}
			wrote += k
			if wrote == len(b) {
				return false // sent: wait for the answer
			}
		}
		for {
			n, rerr = syscall.Read(int(fd), p)
			if rerr != syscall.EINTR {
				break
			}
		}
		return rerr != syscall.EAGAIN
	})
	switch {
	case werr == syscall.EAGAIN:
		// The socket's buffer is full: the rest goes out the usual way.
		if _, err := uc.conn.Write(b[wrote:]); err != nil {
			return 0, &unsentError{err}
		}
		return uc.conn.Read(p)
	case werr != nil:
		return 0, &unsentError{os.NewSyscallError("write", werr)}
	case err != nil && wrote < len(b):
		return 0, &unsentError{err}
	case err != nil:
		return 0, err // a deadline, or the connection closed
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

var (
	errHeadTooLarge   = errors.New("model's response head is larger than 32 KiB")
	errBadResponse    = errors.New("malformed response from the model")
	errUnsupportedTE  = errors.New("model's response uses a transfer coding other than chunked")
	errUpgradeRefused = errors.New("model answered 101 Switching Protocols")
)

// getConn returns an idle connection to the instance, or nil.
func (in *instance) getConn() *upstreamConn {
	in.poolMu.Lock()
	n := len(in.idle)
	if n == 0 {
		in.poolMu.Unlock()
		return nil
	}
	uc := in.idle[n-1]
	in.idle[n-1] = nil
	in.idle = in.idle[:n-1]
	in.poolMu.Unlock()
	uc.reused = true
	return uc
}

// putConn keeps a connection whose last exchange ended cleanly.
func (in *instance) putConn(uc *upstreamConn) {
	in.poolMu.Lock()
	if in.poolClosed || len(in.idle) >= maxIdlePerInstance {
		in.poolMu.Unlock()
		uc.conn.Close()
		return
	}
	in.idle = append(in.idle, uc)
	in.poolMu.Unlock()
}

// closeIdle closes the idle connections and every one given back later: the
// instance has left the table, or the gateway is closing.
func (in *instance) closeIdle() {
	in.poolMu.Lock()
	idle := in.idle
	in.idle = nil
	in.poolClosed = true
	in.poolMu.Unlock()
	for _, uc := range idle {
		uc.conn.Close()
	}
}

func (g *Gateway) dial(in *instance) (*upstreamConn, error) {
	c, err := g.dialer.Dial("tcp", in.addr)
	if err != nil {
		return nil, &unsentError{err}
	}
	return newUpstreamConn(c), nil
}

// unacknowledged reports whether the model's side of the connection has
// not acknowledged all the requests written on it. A model's kernel
// acknowledges what reaches an open socket, whether or not the model reads
// it; so a request that was never acknowledged reached a connection the
// model had closed (its kernel answered with a reset), and the model cannot
// have read it. Asked only after a failure, it costs a request nothing.
func (uc *upstreamConn) unacknowledged() bool {
	if uc.raw == nil {
		return false
	}
	var info *unix.TCPInfo
	err := uc.raw.Control(func(fd uintptr) {
		info, _ = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	// A kernel older than Linux 4.2 fills in neither count: nothing is
	// known, so nothing is resent.
	return err == nil && info != nil && info.Segs_out > 0 && info.Bytes_acked < uint64(uc.sent)
}

// smallBody is the size up to which a request body is copied behind its
// head and sent with one write; larger ones go out with writev.
const smallBody = 16 << 10

// writeRequest sends POST /invocations with the passed-through header lines
// (each "Name: value\r\n") and the body; a small request goes out with the
// first read of the answer, which must follow.
func (uc *upstreamConn) writeRequest(host string, pass, body []byte) error {
	b := uc.buf[:0]
	b = append(b, "POST /invocations HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	b = append(b, pass...)
	b = append(b, "\r\n"...)
	uc.sent += int64(len(b) + len(body))
	var err error
	if len(body) <= smallBody {
		b = append(b, body...)
		if uc.raw != nil {
			uc.pending = b // written by the first read of the answer
		} else if _, err = uc.conn.Write(b); err != nil {
			err = &unsentError{err}
		}
	} else {
		bufs := net.Buffers{b, body}
		if _, err = bufs.WriteTo(uc.conn); err != nil {
			err = &unsentError{err}
		}
	}
	if cap(b) <= 4*smallBody {
		uc.buf = b[:0]
	}
	return err
}

// upstreamResponse is the head of a model's answer. Its slices point into
// the connection's read buffer and are valid until the head is discarded.
type upstreamResponse struct {
	status        int
	headLen       int
	contentLength int64 // -1 when the body is chunked or ends with the connection
	chunked       bool
	// keepAlive is false when the connection cannot carry another request
	// after this body.
	keepAlive   bool
	eventStream bool
	// pass holds the header lines passed to the client: the model's
	// Content-Type and custom attributes, "Name: value\r\n" each, names
	// canonical.
	pass    [4][]byte
	npass   int
	hasType bool
}

// readResponseHead reads the head of the model's answer, skipping interim
// 1xx responses. got reports whether any byte of an answer arrived, which
// tells a stale kept-alive connection (nothing) from a model that failed
// while answering.
func (uc *upstreamConn) readResponseHead(res *upstreamResponse) (got bool, err error) {
	for {
		head, err := peekHead(uc.br)
		if err != nil {
			return uc.br.Buffered() > 0 || got, err
		}
		got = true
		*res = upstreamResponse{}
		if err := parseResponseHead(head, res); err != nil {
			return true, err
		}
		if res.status >= 200 {
			return true, nil
		}
		if res.status == 101 {
			return true, errUpgradeRefused
		}
		uc.br.Discard(res.headLen)
	}
}

// errBareLF is returned for a head whose lines end in a bare LF, which
// the fast path leaves to net/http.
var errBareLF = errors.New("message head with lines ending in a bare LF")

// peekHead returns the buffered bytes up to and including the blank line
// that ends a message head, reading as needed.
func peekHead(br *bufio.Reader) ([]byte, error) {
	for {
		if n := br.Buffered(); n > 0 {
			b, _ := br.Peek(n)
			end, err := scanHead(b)
			if err != nil {
				return nil, err
			}
			if end > 0 {
				return b[:end], nil
			}
			if n == br.Size() {
				return nil, errHeadTooLarge
			}
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil && br.Buffered() < br.Size() {
			return nil, err
		}
	}
}

// scanHead returns the length of the message head at the start of b, or 0
// if b does not hold all of it yet.
func scanHead(b []byte) (int, error) {
	from := 0
	for {
		i := bytes.IndexByte(b[from:], '\n')
		if i < 0 {
			return 0, nil
		}
		p := from + i
		if p == 0 || b[p-1] != '\r' || p+1 < len(b) && b[p+1] == '\n' {
			return 0, errBareLF
		}
		if p+2 >= len(b) {
			return 0, nil
		}
		if b[p+1] == '\r' && b[p+2] == '\n' {
			return p + 3, nil
		}
		from = p + 1
	}
}

func parseResponseHead(head []byte, res *upstreamResponse) error {
	res.headLen = len(head)
	line, rest, _ := bytes.Cut(head, crlf)
	// HTTP/1.x SSS[ reason]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return errBadResponse
	}
	res.keepAlive = line[7] == '1'
	st := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errBadResponse
		}
		st = st*10 + int(c-'0')
	}
	res.status = st
	res.contentLength = -1
	for len(rest) > 2 {
		line, rest, _ = bytes.Cut(rest, crlf)
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validHeaderValue(line[colon+1:]) {
			return errBadResponse
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || (res.contentLength >= 0 && n != res.contentLength) {
				return errBadResponse
			}
			res.contentLength = n
		case equalFold(name, "transfer-encoding"):
			if !equalFold(value, "chunked") {
				return errUnsupportedTE
			}
			res.chunked = true
		case equalFold(name, "connection"):
			if equalFold(value, "close") {
				res.keepAlive = false
			}
		case equalFold(name, "content-type"):
			if !res.hasType {
				res.eventStream = len(value) >= 17 && equalFold(value[:17], "text/event-stream")
			}
			res.hasType = true
			res.addPass(line)
		case equalFold(name, hCustomAttributes):
			res.addPass(line)
		}
	}
	if res.chunked {
		// A chunked body's length is its own; a Content-Length beside it
		// is ignored (RFC 9112, section 6.3).
		res.contentLength = -1
	}
	if st < 200 || st == 204 || st == 304 {
		res.contentLength, res.chunked = 0, false
	}
	if res.contentLength < 0 && !res.chunked {
		// The body ends when the model closes the connection.
		res.keepAlive = false
	}
	return nil
}

func (res *upstreamResponse) addPass(line []byte) {
	if res.npass < len(res.pass) {
		res.pass[res.npass] = line
		res.npass++
	}
}

var crlf = []byte("\r\n")

// parseLength parses a Content-Length value.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// trimOWS trims the optional whitespace around a header value.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// validHeaderValue reports whether b holds no control character but tab.
func validHeaderValue(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// equalFold compares ASCII case-insensitively; s is lower case or
// canonical.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// aLongTimeAgo is a deadline in the past: setting it makes a blocked read
// or write return at once.
var aLongTimeAgo = time.Unix(1, 0)

package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kiln-serve/kiln/internal/clock"
)

// The fast path. net/http's server costs a few microseconds a request
// before the handler runs (a header map, a background read to notice a
// client going away, a Request and its context), and its Transport as much
// again: on one core the gateway spent 2.5 to 3.3 times nginx's CPU per
// request and served a third to three quarters of its requests/s
// (docs/benchmarks.md). So the first invocation on an HTTP/1.1 connection
// is taken over: ServeHTTP hijacks the connection, answers that invocation
// itself, and goes on serving the connection's next requests with a parser
// that reads the head in place in its read buffer. Anything it does not
// handle in the simplest way (another path or method, a chunked or
// oversized body, Expect, Connection: close, a repeated header, an escaped
// name, a head larger than the buffer or with bare-LF line ends) goes back,
// unread, to an http.Server serving Config.Fallback, which sees it exactly
// as the client sent it.

// Limits of the fast path.
const (
	// fastBufSize is the read buffer of a client connection; a request
	// head that does not fit goes to net/http.
	fastBufSize = 8 << 10
	// watchAfter is how long the model may work before the gateway starts
	// reading the client's connection to notice it closing. Quicker
	// answers never pay for that read.
	watchAfter = 20 * time.Millisecond
	// parkAfter is how long a connection waits for its next request with
	// a read buffer; then it gives the buffer back and waits on the
	// socket alone (see park).
	parkAfter = time.Second
)

// fastConn is a client connection the gateway took over from net/http.
type fastConn struct {
	g    *Gateway
	conn net.Conn
	// br reads src, the connection after what net/http had read ahead; bw
	// writes to conn. An idle connection gives both back to their pools
	// (bw at once, br when it parks).
	src io.Reader
	br  *bufio.Reader
	bw  *bufio.Writer
	// raw waits for the connection to become readable; nil if it cannot,
	// and then the connection never parks.
	raw syscall.RawConn
	// timeout fires when the model takes longer than ModelTimeout; watch
	// starts watching the client; writeTimer cuts a write to the client
	// that takes longer than WriteTimeout. All are made once per
	// connection.
	timeout, watch, writeTimer clock.Timer

	// busy is set while a request is served, and Close leaves the
	// connection be. waitTimer bounds each wait for the client: for its
	// next request (while not busy), or for the rest of a request's head
	// or body (while waiting): it fires at waitUntil, and sets
	// waitExpired. While idle, it fires first after parkAfter, and sets
	// parkDue too. All guarded by Gateway.connsMu.
	busy        bool
	waiting     bool
	waitUntil   time.Time
	waitExpired bool
	parkDue     bool
	parked      bool
	waitTimer   clock.Timer

	mu        sync.Mutex // guards what follows, between requests and timers
	up        *upstreamConn
	deadline  time.Time // when the current wait for the model ends
	timedOut  bool
	gone      bool // the client closed its connection
	watching  bool
	stopWatch bool
	writing   bool // a write to the client is under way
	writeCut  bool // writeExpire ended it
	watchDone chan struct{}

	// flushed is set once some of the current answer has gone to the
	// client: a model that breaks it off then costs the connection.
	flushed bool

	pass    []byte // passed-through request header lines
	res     upstreamResponse
	dateSec int64
	date    []byte
	scratch []byte
	auth    authState
}

// takeOver hijacks the connection of a request net/http served, or returns
// nil when it cannot.
func (g *Gateway) takeOver(w http.ResponseWriter, r *http.Request) *fastConn {
	if !g.fast || r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Close {
		return nil
	}
	for _, k := range [...]string{hContentType, hAccept, hCustomAttributes, hInferenceID} {
		if len(r.Header[k]) > 1 {
			return nil
		}
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil
	}
	g.connsMu.Lock()
	defer g.connsMu.Unlock()
	if g.closing {
		return nil
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil
	}
	// Bytes net/http read ahead (a pipelined request) come first.
	var pre []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		pre = append(pre, b...)
	}
	if rc, ok := conn.(*replayConn); ok {
		// A connection handed back to net/http and taken over again: the
		// bytes the fast path had read still come before the socket's.
		if n := rc.r.Buffered(); n > 0 {
			b, _ := rc.r.Peek(n)
			pre = append(pre, b...)
		}
		conn = rc.Conn
	}
	c := newFastConn(g, conn, &prefixReader{pre: pre, conn: conn})
	c.busy = true
	g.conns[c] = struct{}{}
	return c
}

// newFastConn returns the fast path's state for a client connection whose
// bytes r reads, in the middle of a request: with its write buffer.
func newFastConn(g *Gateway, conn net.Conn, r io.Reader) *fastConn {
	c := &fastConn{g: g, conn: conn, src: r, raw: rawOf(conn)}
	c.takeReader()
	c.takeWriter()
	c.timeout = g.clock.AfterFunc(time.Hour, c.expire)
	c.timeout.Stop()
	c.watch = g.clock.AfterFunc(time.Hour, c.startWatching)
	c.watch.Stop()
	c.waitTimer = g.clock.AfterFunc(time.Hour, c.waitExpire)
	c.waitTimer.Stop()
	c.writeTimer = g.clock.AfterFunc(time.Hour, c.writeExpire)
	c.writeTimer.Stop()
	return c
}

// readers and writers hold the buffers of client connections that are
// not serving a request: an idle connection holds no write buffer, and a
// parked one no read buffer either.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, fastBufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, fastBufSize) }}
)

// takeReader gives the connection a read buffer.
func (c *fastConn) takeReader() {
	if c.br == nil {
		c.br = readers.Get().(*bufio.Reader)
		c.br.Reset(c.src)
	}
}

// dropReader gives the read buffer back; it must hold nothing unread.
func (c *fastConn) dropReader() {
	if c.br != nil {
		c.br.Reset(nil)
		readers.Put(c.br)
		c.br = nil
	}
}

// takeWriter gives the connection a write buffer for a request.
func (c *fastConn) takeWriter() {
	if c.bw == nil {
		c.bw = writers.Get().(*bufio.Writer)
		c.bw.Reset(clientWriter{c})
	}
}

// dropWriter gives the write buffer back, unflushed bytes and all.
func (c *fastConn) dropWriter() {
	if c.bw != nil {
		c.bw.Reset(nil)
		writers.Put(c.bw)
		c.bw = nil
	}
}

// clientWriter writes to the client's connection, each write that has to
// wait for the client bounded by WriteTimeout on the gateway's clock: a
// client that stops reading its answers loses its connection rather than
// holding it, and a model connection, for good. A stream is not bounded
// between two writes. A write that need not wait, the usual case, arms no
// timer.
type clientWriter struct{ c *fastConn }

func (w clientWriter) Write(p []byte) (int, error) {
	c := w.c
	if c.raw == nil {
		c.beginWriteWait()
		n, err := c.conn.Write(p)
		c.endWriteWait(err)
		return n, err
	}
	n, waited := 0, false
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			k, e := syscall.Write(int(fd), p[n:])
			switch e {
			case nil:
				n += k
				continue
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				if !waited {
					waited = true
					c.beginWriteWait()
				}
				return false // wait until the client makes room
			}
			werr = os.NewSyscallError("write", e)
			return true
		}
		return true
	})
	if werr != nil {
		err = werr
	}
	if waited {
		c.endWriteWait(err)
	}
	return n, err
}

// beginWriteWait arms the write timer for a write that waits for the
// client; endWriteWait disarms it, and takes back the deadline it set if
// it fired as the write ended anyway.
func (c *fastConn) beginWriteWait() {
	c.mu.Lock()
	c.writing = true
	c.mu.Unlock()
	c.writeTimer.Reset(c.g.writeTimeout)
}

func (c *fastConn) endWriteWait(err error) {
	c.writeTimer.Stop()
	c.mu.Lock()
	c.writing = false
	cut := c.writeCut
	c.writeCut = false
	c.mu.Unlock()
	if cut && err == nil {
		c.conn.SetWriteDeadline(time.Time{})
	}
}

// writeExpire runs when the write timer fires: a write still under way
// gets a deadline in the past, which ends it.
func (c *fastConn) writeExpire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing {
		c.writeCut = true
		c.conn.SetWriteDeadline(aLongTimeAgo)
	}
}

// prefixReader reads pre, then the connection.
type prefixReader struct {
	pre  []byte
	conn net.Conn
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.conn.Read(b)
}

// replayConn is a connection handed back to net/http: reads go through the
// fast path's buffer, which may hold the start of the request.
type replayConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// passHeaders keeps the header lines of a request net/http read that the
// model gets.
func (c *fastConn) passHeaders(h http.Header) {
	c.pass = c.pass[:0]
	for _, k := range [...]string{hContentType, hAccept, hCustomAttributes, hInferenceID} {
		if v, ok := h[k]; ok && len(v) == 1 {
			c.pass = appendHeader(c.pass, k, v[0])
		}
	}
}

// firstRequest serves the invocation net/http read, whose header lines
// passHeaders kept, then the connection.
func (c *fastConn) firstRequest(start time.Time, ep *endpointTable, target *variantTable, body []byte) {
	keep := c.invoke(start, ep, target, body)
	if keep && c.idle() {
		c.serve()
		return
	}
	c.close()
}

// serve reads and answers requests until the connection ends or goes back
// to net/http.
func (c *fastConn) serve() {
	for {
		if c.br.Buffered() == 0 && !c.awaitRequest() {
			c.close()
			return
		}
		if !c.setBusy() {
			c.close()
			return
		}
		switch c.next() {
		case nextKeep:
			if !c.idle() {
				c.close()
				return
			}
		case nextClose:
			c.close()
			return
		case nextHandBack:
			c.handBack()
			return
		}
	}
}

// awaitRequest waits for the next request to begin, at most IdleTimeout
// (see waitExpire), and reports whether it has. After parkAfter it parks.
func (c *fastConn) awaitRequest() bool {
	canPark := c.raw != nil && c.g.idleTimeout > parkAfter
	wait := c.g.idleTimeout
	if canPark {
		wait = parkAfter
	}
	c.waitTimer.Reset(wait)
	if _, err := c.br.Peek(1); err == nil || !canPark {
		return err == nil
	}
	c.g.connsMu.Lock()
	park := c.parkDue && !c.g.closing
	c.parked = park
	c.parkDue, c.waitExpired = false, false
	rest := c.waitUntil.Sub(c.g.clock.Now())
	c.g.connsMu.Unlock()
	if !park {
		return false
	}
	return c.park(rest)
}

// park waits, for at most rest, until the connection has something to
// read, without a read buffer: 5,000 idle connections would otherwise hold
// 40 MB of them.
func (c *fastConn) park(rest time.Duration) bool {
	// The deadline waitExpire set to end the read is taken back, and the
	// timer now runs to the end of the idle timeout.
	c.conn.SetReadDeadline(time.Time{})
	c.waitTimer.Reset(max(rest, 0))
	c.dropReader()
	err := c.raw.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // nothing yet: wait until the socket is readable
			}
			// A byte, the end of the stream or an error, which the
			// reader is left to find.
			return true
		}
	})
	c.g.connsMu.Lock()
	c.parked = false
	c.g.connsMu.Unlock()
	if err != nil {
		return false
	}
	c.takeReader()
	_, err = c.br.Peek(1)
	return err == nil
}

// setBusy marks the connection busy, as a request has begun to arrive;
// false if the gateway is closing.
func (c *fastConn) setBusy() bool {
	c.g.connsMu.Lock()
	if c.g.closing {
		c.g.connsMu.Unlock()
		return false
	}
	c.busy = true
	expired := c.waitExpired
	c.waitExpired, c.parkDue = false, false
	c.g.connsMu.Unlock()
	// A request that came as the idle timeout ran out is served.
	c.stopWait(expired)
	c.takeWriter()
	return true
}

// beginWait bounds a wait for more of a request to d.
func (c *fastConn) beginWait(d time.Duration) {
	c.g.connsMu.Lock()
	c.waiting = true
	c.waitUntil = c.g.clock.Now().Add(d)
	c.g.connsMu.Unlock()
	c.waitTimer.Reset(d)
}

// endWait ends a wait beginWait bounded.
func (c *fastConn) endWait() {
	c.g.connsMu.Lock()
	c.waiting = false
	expired := c.waitExpired
	c.waitExpired = false
	c.g.connsMu.Unlock()
	c.stopWait(expired)
}

// stopWait stops the wait timer and, if it had fired, takes back the read
// deadline it set.
func (c *fastConn) stopWait(expired bool) {
	c.waitTimer.Stop()
	if expired {
		c.conn.SetReadDeadline(time.Time{})
	}
}

// idle marks the connection idle, waiting for its next request until
// IdleTimeout from now; false if the gateway is closing.
func (c *fastConn) idle() bool {
	if c.bw.Buffered() > 0 && c.bw.Flush() != nil {
		return false
	}
	c.dropWriter()
	c.g.connsMu.Lock()
	defer c.g.connsMu.Unlock()
	c.busy = false
	c.waitUntil = c.g.clock.Now().Add(c.g.idleTimeout)
	return !c.g.closing
}

// waitExpire runs when the wait timer fires: a connection still waiting
// for the client past its time gets a read deadline in the past, which
// ends the read, and the connection is closed. A timer that fired late,
// for an earlier wait, does nothing.
func (c *fastConn) waitExpire() {
	c.g.connsMu.Lock()
	defer c.g.connsMu.Unlock()
	if c.busy && !c.waiting {
		return
	}
	if c.g.clock.Now().Before(c.waitUntil) {
		// Idle for parkAfter, not yet for IdleTimeout: time to park.
		if c.busy || c.parked {
			return
		}
		c.parkDue = true
	}
	c.waitExpired = true
	c.conn.SetReadDeadline(aLongTimeAgo)
}

func (c *fastConn) forget() {
	c.g.connsMu.Lock()
	delete(c.g.conns, c)
	if c.g.closing && len(c.g.conns) == 0 {
		select {
		case <-c.g.connsGone:
		default:
			close(c.g.connsGone)
		}
	}
	c.g.connsMu.Unlock()
	c.timeout.Stop()
	c.watch.Stop()
	c.waitTimer.Stop()
	c.writeTimer.Stop()
}

func (c *fastConn) close() {
	c.forget()
	c.conn.Close()
	c.dropWriter()
	c.dropReader()
}

func (c *fastConn) handBack() {
	c.forget()
	c.dropWriter()
	c.g.handBack(&replayConn{Conn: c.conn, r: c.br})
}

type nextResult int

const (
	nextKeep nextResult = iota
	nextClose
	nextHandBack
)

// next reads one request and answers it, unless it is one for net/http.
func (c *fastConn) next() nextResult {
	head, err := c.peekHead()
	if err != nil {
		if errors.Is(err, errHeadTooLarge) || errors.Is(err, errBareLF) {
			return nextHandBack
		}
		return nextClose
	}
	start := c.g.clock.Now()
	req, ok := c.parseHead(head)
	if !ok {
		return nextHandBack
	}
	// The names are in the read buffer, which the body overwrites.
	var invalid string
	switch {
	case req.ep == nil:
		invalid = c.g.notFound(string(req.name))
	case req.msg != "":
		invalid = req.msg
	case req.hasTarget && req.target == nil:
		invalid = c.g.variantNotFound(req.ep.name, string(req.targetName))
	}
	var ar *http.Request
	if c.g.authorize != nil {
		ar = c.authRequest(head, req.name)
	}
	req.name, req.targetName = nil, nil
	c.br.Discard(len(head))

	var buf *bytes.Buffer
	var body []byte
	if req.contentLength > 0 {
		buf = getBody()
		buf.Grow(int(req.contentLength))
		body = buf.AvailableBuffer()[:req.contentLength]
		wait := c.br.Buffered() < len(body)
		if wait {
			c.beginWait(c.g.bodyTimeout)
		}
		_, err := io.ReadFull(c.br, body)
		if wait {
			c.endWait()
		}
		if err != nil {
			putBody(buf)
			return nextClose
		}
	}
	var ref *Refusal
	if ar != nil {
		ar.ContentLength = req.contentLength
		if len(body) > 0 {
			c.auth.body.Reset(body)
			ar.Body = &c.auth.body
		}
		ref = c.g.authorize(ar)
	}
	keep := false
	switch {
	case ref != nil:
		keep = c.writeError(ref.Status, ref.Code, ref.Message, nil, "")
	case invalid != "":
		keep = c.writeError(http.StatusBadRequest, codeValidation, invalid, nil, "")
	default:
		keep = c.invoke(start, req.ep, req.target, body)
	}
	if buf != nil {
		putBody(buf)
	}
	if keep {
		return nextKeep
	}
	return nextClose
}

// peekHead returns the next request's head from the read buffer. When it
// has not all arrived, the rest gets HeaderTimeout to come.
func (c *fastConn) peekHead() ([]byte, error) {
	if n := c.br.Buffered(); n > 0 {
		// The usual case: the whole head came in one segment.
		b, _ := c.br.Peek(n)
		if end, err := scanHead(b); end > 0 || err != nil {
			return b[:end], err
		}
	}
	c.beginWait(c.g.headerTimeout)
	defer c.endWait()
	return peekHead(c.br)
}

// fastRequest is what parseHead takes from a request head. The byte slices
// point into the read buffer.
type fastRequest struct {
	name, targetName []byte
	ep               *endpointTable
	target           *variantTable
	hasTarget        bool
	contentLength    int64
	msg              string // a ValidationError's message
}

const (
	invokePrefix = "POST /endpoints/"
	invokeSuffix = "/invocations HTTP/1.1"
)

// parseHead parses a request head in place, looking the endpoint and
// variant up while their names are in the buffer. It reports false for a
// request the fast path leaves to net/http, which answers malformed ones
// too.
func (c *fastConn) parseHead(head []byte) (req fastRequest, ok bool) {
	line, rest, _ := bytes.Cut(head, crlf)
	if !bytes.HasPrefix(line, []byte(invokePrefix)) || !bytes.HasSuffix(line, []byte(invokeSuffix)) ||
		len(line) <= len(invokePrefix)+len(invokeSuffix) {
		return req, false
	}
	req.name = line[len(invokePrefix) : len(line)-len(invokeSuffix)]
	for _, ch := range req.name {
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-') {
			return req, false
		}
	}
	var hv headerValues[[]byte]
	hosts := 0
	hasLength := false
	c.pass = c.pass[:0]
	for len(rest) > 2 {
		line, rest, _ = bytes.Cut(rest, crlf)
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) || !validHeaderValue(line[colon+1:]) {
			return req, false
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		var seen *bool
		switch {
		case equalFold(name, "host"):
			// net/http answers 400 to a Host it refuses.
			if !validHost(value) {
				return req, false
			}
			hosts++
		case equalFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || hasLength {
				return req, false
			}
			req.contentLength, hasLength = n, true
		case equalFold(name, "transfer-encoding"), equalFold(name, "expect"), equalFold(name, "upgrade"):
			return req, false
		case equalFold(name, "connection"):
			if !equalFold(value, "keep-alive") {
				return req, false
			}
		case equalFold(name, hContentType):
			seen, hv.contentType = &hv.hasContentType, value
			c.pass = appendHeader(c.pass, hContentType, value)
		case equalFold(name, hAccept):
			seen, hv.accept = &hv.hasAccept, value
			c.pass = appendHeader(c.pass, hAccept, value)
		case equalFold(name, hCustomAttributes):
			seen, hv.customAttributes = &hv.hasCustomAttributes, value
			c.pass = appendHeader(c.pass, hCustomAttributes, value)
		case equalFold(name, hInferenceID):
			seen, hv.inferenceID = &hv.hasInferenceID, value
			c.pass = appendHeader(c.pass, hInferenceID, value)
		case equalFold(name, hTargetVariant):
			seen, req.targetName = &req.hasTarget, value
		}
		if seen != nil {
			if *seen {
				return req, false
			}
			*seen = true
		}
	}
	if hosts != 1 || req.contentLength > c.g.maxBody {
		return req, false
	}
	req.ep = c.g.table.Load().endpoints[string(req.name)]
	if req.ep == nil {
		return req, true
	}
	if req.msg = hv.check(); req.msg != "" {
		return req, true
	}
	if req.hasTarget && len(req.targetName) > 0 {
		req.target = req.ep.variant(string(req.targetName))
	} else {
		req.hasTarget = false
	}
	return req, true
}

// authState is what a connection reuses from one request to the next to
// show Config.Authorize its requests.
type authState struct {
	req    http.Request
	url    url.URL
	header http.Header
	values []string
	name   []byte // the endpoint of path
	path   string
	remote string
	body   authBody
}

// authBody is a request body Authorize may read.
type authBody struct{ bytes.Reader }

func (*authBody) Close() error { return nil }

// authHeaders are canonical header names that requests often carry, so
// that their keys are not allocated again for every request.
var authHeaders = [...]string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token",
	"Content-Type", "Content-Length", "Accept", "Accept-Encoding", "User-Agent", "X-Amz-User-Agent",
	"Amz-Sdk-Invocation-Id", "Amz-Sdk-Request", hCustomAttributes, hInferenceID, hTargetVariant, "Connection"}

// authRequest makes, for Config.Authorize, the http.Request net/http reads
// from head, a head parseHead accepted for endpoint name. Its body is left
// to the caller. The request, its URL and header are the connection's,
// reused for its next request: Authorize must not keep them. Only a
// gateway with Authorize pays for it.
func (c *fastConn) authRequest(head, name []byte) *http.Request {
	a := &c.auth
	if a.header == nil {
		a.header = make(http.Header, len(authHeaders))
	}
	clear(a.header)
	clear(a.values)
	a.values = a.values[:0]
	host := ""
	_, rest, _ := bytes.Cut(head, crlf)
	for len(rest) > 2 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, crlf)
		colon := bytes.IndexByte(line, ':')
		name, value := line[:colon], string(trimOWS(line[colon+1:]))
		if equalFold(name, "host") {
			// net/http moves it to Request.Host.
			host = value
			continue
		}
		key := ""
		for _, h := range authHeaders {
			if equalFold(name, h) {
				key = h
				break
			}
		}
		if key == "" {
			key = textproto.CanonicalMIMEHeaderKey(string(name))
		}
		if vv, ok := a.header[key]; ok {
			a.header[key] = append(vv, value)
			continue
		}
		// One array holds the first values, as net/http does.
		a.values = append(a.values, value)
		n := len(a.values)
		a.header[key] = a.values[n-1 : n : n]
	}
	if a.path == "" || !bytes.Equal(a.name, name) {
		a.name = append(a.name[:0], name...)
		a.path = pathPrefix + string(name) + pathSuffix
	}
	if a.remote == "" && c.conn != nil {
		a.remote = c.conn.RemoteAddr().String()
	}
	a.url = url.URL{Path: a.path}
	a.req = http.Request{
		Method:     http.MethodPost,
		URL:        &a.url,
		RequestURI: a.path,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     a.header,
		Host:       host,
		Body:       http.NoBody,
		RemoteAddr: a.remote,
	}
	return &a.req
}

// appendHeader appends "name: value\r\n".
func appendHeader[T string | []byte](b []byte, name string, value T) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// tokenChars marks the bytes of RFC 9110's token.
var tokenChars = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
	}
	return t
}()

// isToken reports whether b is a header field name.
func isToken(b []byte) bool {
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return len(b) > 0
}

// invoke routes one invocation and answers it. It reports whether the
// connection can serve another request.
func (c *fastConn) invoke(start time.Time, ep *endpointTable, target *variantTable, body []byte) bool {
	g := c.g
	var failed *instance
	var lastErr error
	var f *fleetTable
	routable := 0
	for attempt := 0; attempt < 2; attempt++ {
		targetName := ""
		if target != nil {
			targetName = target.name
		}
		// The client is not watched while it waits for an instance; the
		// wait is bounded.
		v, fl, in := g.acquireOrWait(ep.name, targetName, failed, nil)
		if in == nil {
			break
		}
		f, routable = fl, v.routable
		keep, err := c.attempt(start, ep.name, body, v, f, in)
		if err == nil {
			return keep
		}
		failed, lastErr = in, err
		g.log.Warn("gateway: model unreachable", "endpoint", ep.name, "variant", v.name,
			"fleet", f.id, "instance", in.id, "addr", in.addr, "err", err)
	}
	if lastErr == nil {
		g.record(f, routable, start, 0, 0, http.StatusServiceUnavailable, false)
		return c.writeError(http.StatusServiceUnavailable, codeServiceUnavailable,
			fmt.Sprintf("Endpoint %s has no instance available to take the request. Try again later.", ep.name), nil, "")
	}
	g.record(f, routable, start, 0, 0, http.StatusServiceUnavailable, true)
	return c.writeError(http.StatusServiceUnavailable, codeServiceUnavailable,
		fmt.Sprintf("The model of endpoint %s could not be reached. Try again later.", ep.name), nil, "")
}

// attempt sends the invocation to one instance and, unless the model could
// not be reached, answers the client. It returns an error only for an
// invocation that may be tried again elsewhere.
func (c *fastConn) attempt(start time.Time, endpoint string, body []byte, v *variantTable, f *fleetTable, in *instance) (keep bool, err error) {
	// The request leaves the instance before it is recorded, and both
	// happen before the client can see the end of the answer, as on
	// net/http's path: whoever reads the answer finds the gateway's state
	// up to date.
	released := false
	release := func() {
		if !released {
			released = true
			in.release()
		}
	}
	defer release()
	g := c.g
	uc := in.getConn()
	if uc == nil {
		if uc, err = g.dial(in); err != nil {
			return false, err
		}
	}
	sent := g.clock.Now()
	c.begin(uc, sent)
	res := &c.res
	err = c.send(uc, in, body, res)
	if err != nil && mayResend(err) && uc.reused && !c.cancelled() {
		// A kept-alive connection the model had closed: once more on a
		// fresh one, as net/http's Transport does.
		uc.conn.Close()
		if uc, err = g.dial(in); err == nil {
			c.setUpstream(uc)
			err = c.send(uc, in, body, res)
		}
	}
	now := g.clock.Now()
	modelLatency := now.Sub(sent)
	if err != nil {
		timedOut, gone := c.end()
		if uc != nil {
			uc.conn.Close()
		}
		switch {
		case timedOut:
			release()
			g.record(f, v.routable, start, modelLatency, 0, http.StatusFailedDependency, true)
			return c.writeError(http.StatusFailedDependency, codeModel, g.timedOut(v.name), nil, ""), nil
		case gone:
			release()
			g.record(f, v.routable, start, modelLatency, 0, statusClientClosed, false)
			return false, nil
		case mayResend(err):
			return false, err
		}
		// The model may have read the request: it is not sent again.
		g.log.Warn("gateway: model failed to answer", "endpoint", endpoint, "variant", v.name,
			"instance", in.id, "err", err)
		release()
		g.record(f, v.routable, start, modelLatency, 0, http.StatusFailedDependency, true)
		e := g.failedToAnswer(v.name, endpoint, failureOf(err))
		return c.writeError(http.StatusFailedDependency, codeModel, "", &e, v.name), nil
	}

	rec := func(status int, modelErr bool) {
		release()
		g.record(f, v.routable, start, modelLatency, res.status, status, modelErr)
	}
	if res.status < 200 || res.status > 299 {
		return c.modelFailed(uc, endpoint, v, in, rec), nil
	}

	// The client's head: the model's Content-Type and custom attributes as
	// it sent them, then the gateway's own.
	streaming := res.contentLength < 0 || res.eventStream
	b := c.bw.AvailableBuffer()
	b = append(b, "HTTP/1.1 200 OK\r\n"...)
	for _, p := range res.pass[:res.npass] {
		b = append(b, p...)
		b = append(b, "\r\n"...)
	}
	b = c.appendCommon(b, now)
	b = appendHeader(b, hInvokedVariant, v.name)
	if streaming {
		b = append(b, "Transfer-Encoding: chunked\r\n\r\n"...)
	} else {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, res.contentLength, 10)
		b = append(b, "\r\n\r\n"...)
	}
	contentLength := res.contentLength
	uc.br.Discard(res.headLen)
	c.flushed = len(b) > c.bw.Available()
	c.bw.Write(b)

	var status int
	var modelErr, complete bool
	if streaming {
		status, modelErr, complete = c.stream(uc, res.chunked, contentLength)
	} else {
		status, modelErr, complete = c.copyBody(uc, contentLength)
	}
	timedOut, gone := c.end()
	if timedOut || gone || !complete || !res.keepAlive {
		uc.conn.Close()
	} else {
		in.putConn(uc)
	}
	if modelErr {
		// The model broke its answer off, or timed out in the middle of
		// it: a model error, whatever status it began with.
		g.log.Warn("gateway: model response cut short", "endpoint", endpoint, "variant", v.name, "instance", in.id)
		release()
		g.record(f, v.routable, start, modelLatency, 0, status, true)
		if c.flushed {
			// The client has the head: the connection is cut before the
			// body's end, so that it cannot take the answer for whole.
			return false, nil
		}
		// None of it has gone out: a ModelError takes its place.
		c.bw.Reset(clientWriter{c})
		e := g.failedToAnswer(v.name, endpoint, cutShort)
		if timedOut {
			e = errorBody{Type: codeModel, Message: g.timedOut(v.name)}
		}
		return c.writeError(http.StatusFailedDependency, codeModel, "", &e, v.name) && !gone, nil
	}
	rec(status, modelErr)
	// The rest of the answer goes out after it is recorded, as net/http
	// flushes a handler's answer after the handler returns.
	return complete && !gone && c.bw.Flush() == nil, nil
}

// send writes the request to the model on uc and reads the head of its
// answer. A failure is an unsentError when the model cannot have received
// the request whole (see mayResend).
func (c *fastConn) send(uc *upstreamConn, in *instance, body []byte, res *upstreamResponse) error {
	if err := uc.writeRequest(in.addr, c.pass, body); err != nil {
		return err
	}
	got, err := uc.readResponseHead(res)
	if err != nil && !got && uc.unacknowledged() {
		// The connection had been closed by the model when the request
		// reached it (a kept-alive one, usually).
		return &unsentError{err}
	}
	return err
}

// copyBody copies a body of known length through the buffers, so a small
// answer goes out with its head in one write.
func (c *fastConn) copyBody(uc *upstreamConn, n int64) (status int, modelErr, complete bool) {
	for n > 0 {
		if uc.br.Buffered() == 0 {
			c.extend()
			if _, err := uc.br.Peek(1); err != nil {
				return c.readFailed()
			}
		}
		p, _ := uc.br.Peek(int(min(int64(uc.br.Buffered()), n)))
		if len(p) > c.bw.Available() {
			c.flushed = true // the write sends what the buffer holds
		}
		if _, err := c.bw.Write(p); err != nil {
			return statusClientClosed, false, false
		}
		uc.br.Discard(len(p))
		n -= int64(len(p))
	}
	return http.StatusOK, false, true
}

// stream passes a body through as it arrives, chunked, flushing after every
// read so that server-sent events reach the client at once.
func (c *fastConn) stream(uc *upstreamConn, chunked bool, n int64) (status int, modelErr, complete bool) {
	c.flushed = true
	if c.bw.Flush() != nil {
		return statusClientClosed, false, false
	}
	var r io.Reader = uc.br
	switch {
	case chunked:
		r = httputil.NewChunkedReader(uc.br)
	case n >= 0:
		r = io.LimitReader(uc.br, n)
	}
	bufp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bufp)
	buf := *bufp
	for {
		c.extend()
		k, err := r.Read(buf)
		if k > 0 {
			b := c.bw.AvailableBuffer()
			b = strconv.AppendInt(b, int64(k), 16)
			b = append(b, "\r\n"...)
			c.bw.Write(b)
			c.bw.Write(buf[:k])
			c.bw.WriteString("\r\n")
			if c.bw.Flush() != nil {
				return statusClientClosed, false, false
			}
		}
		if err == io.EOF {
			if n >= 0 && !chunked {
				// A length the model announced must be met.
				if r.(*io.LimitedReader).N > 0 {
					return c.readFailed()
				}
			}
			if chunked && !skipTrailer(uc.br) {
				return c.readFailed()
			}
			c.bw.WriteString("0\r\n\r\n")
			return http.StatusOK, false, true
		}
		if err != nil {
			return c.readFailed()
		}
	}
}

// skipTrailer reads the trailer section after a chunked body's last chunk.
func skipTrailer(br *bufio.Reader) bool {
	for range 64 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false
		}
		if len(line) <= 2 {
			return true
		}
	}
	return false
}

// readFailed tells why reading the model's body failed: the client went
// away, or the model timed out or cut its answer short (a model error,
// recorded as the 424 it is answered with when none of the answer has
// gone out yet).
func (c *fastConn) readFailed() (status int, modelErr, complete bool) {
	c.mu.Lock()
	gone := c.gone
	c.mu.Unlock()
	if gone {
		return statusClientClosed, false, false
	}
	return http.StatusFailedDependency, true, false
}

// modelFailed answers 424 ModelError for a model that answered non-2xx.
func (c *fastConn) modelFailed(uc *upstreamConn, endpoint string, v *variantTable, in *instance, rec func(int, bool)) bool {
	res := &c.res
	status := res.status
	keepAlive, chunked, n := res.keepAlive, res.chunked, res.contentLength
	uc.br.Discard(res.headLen)
	var r io.Reader = uc.br
	switch {
	case chunked:
		r = httputil.NewChunkedReader(uc.br)
	case n >= 0:
		r = io.LimitReader(uc.br, n)
	}
	msg, _ := io.ReadAll(io.LimitReader(r, maxOriginalMessage))
	_, err := io.CopyN(io.Discard, r, maxDrain)
	timedOut, gone := c.end()
	if err == io.EOF && keepAlive && !timedOut && !gone && (!chunked || skipTrailer(uc.br)) {
		in.putConn(uc)
	} else {
		uc.conn.Close()
	}
	e := c.g.modelError(status, v.name, endpoint, msg)
	rec(http.StatusFailedDependency, true)
	if !c.writeError(http.StatusFailedDependency, codeModel, "", &e, v.name) {
		return false
	}
	return !gone
}

// appendCommon appends the headers every answer carries.
func (c *fastConn) appendCommon(b []byte, now time.Time) []byte {
	b = append(b, hRequestID...)
	b = append(b, ": "...)
	b = c.g.appendRequestID(b)
	if s := now.Unix(); s != c.dateSec || c.date == nil {
		c.dateSec = s
		c.date = now.UTC().AppendFormat(c.date[:0], http.TimeFormat)
	}
	b = append(b, "\r\nDate: "...)
	b = append(b, c.date...)
	b = append(b, "\r\n"...)
	return append(b, securityHead...)
}

// writeError answers with the runtime API's JSON error, e if not nil, else
// one made of code and message.
func (c *fastConn) writeError(status int, code, message string, e *errorBody, variant string) bool {
	if e == nil {
		e = &errorBody{Type: code, Message: message}
	}
	body, err := json.Marshal(e)
	if err != nil {
		body = []byte(`{"__type":"` + e.Type + `","message":""}`)
	}
	b := c.scratch[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\n"...)
	b = c.appendCommon(b, c.g.clock.Now())
	b = appendHeader(b, hContentType, "application/json")
	b = appendHeader(b, hErrorType, e.Type)
	if variant != "" {
		b = appendHeader(b, hInvokedVariant, variant)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.scratch = b[:0]
	_, err = c.bw.Write(b)
	return err == nil
}

// begin arms the timers for a request sent to the model on uc now.
func (c *fastConn) begin(uc *upstreamConn, now time.Time) {
	c.mu.Lock()
	c.up = uc
	c.deadline = now.Add(c.g.modelTimeout)
	c.timedOut, c.gone = false, false
	c.mu.Unlock()
	c.timeout.Reset(c.g.modelTimeout)
	c.watch.Reset(watchAfter)
}

func (c *fastConn) setUpstream(uc *upstreamConn) {
	c.mu.Lock()
	c.up = uc
	c.mu.Unlock()
}

// extend gives the model another ModelTimeout for the next read.
func (c *fastConn) extend() {
	c.mu.Lock()
	c.deadline = c.g.clock.Now().Add(c.g.modelTimeout)
	c.mu.Unlock()
	c.timeout.Reset(c.g.modelTimeout)
}

func (c *fastConn) cancelled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timedOut || c.gone
}

// expire runs when the timeout timer fires: for a timer that fired late,
// after the wait it was set for was extended or ended, it does nothing.
func (c *fastConn) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up == nil || c.g.clock.Now().Before(c.deadline) {
		return
	}
	c.timedOut = true
	c.up.conn.SetDeadline(aLongTimeAgo)
}

// startWatching runs when the model has worked for watchAfter: from then on
// a read on the client's connection notices it closing, and cancels the
// request to the model, as net/http's background read does for every
// request.
func (c *fastConn) startWatching() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up == nil || c.watching {
		return
	}
	c.watching, c.stopWatch = true, false
	c.watchDone = make(chan struct{})
	go func() {
		defer close(c.watchDone)
		_, err := c.br.Peek(1)
		if err == nil {
			return // the next request is here already (pipelined)
		}
		c.mu.Lock()
		if !c.stopWatch {
			c.gone = true
			if c.up != nil {
				c.up.conn.SetDeadline(aLongTimeAgo)
			}
		}
		c.mu.Unlock()
	}()
}

// end disarms the timers and stops the watch; it reports whether the model
// timed out or the client went away.
func (c *fastConn) end() (timedOut, gone bool) {
	c.timeout.Stop()
	c.watch.Stop()
	c.mu.Lock()
	c.up = nil
	watching := c.watching
	c.stopWatch = true
	c.mu.Unlock()
	if watching {
		c.conn.SetReadDeadline(aLongTimeAgo)
		<-c.watchDone
		c.conn.SetReadDeadline(time.Time{})
	}
	c.mu.Lock()
	timedOut, gone = c.timedOut, c.gone
	c.watching = false
	c.mu.Unlock()
	return timedOut, gone
}

// handBack gives a connection to the fallback server.
func (g *Gateway) handBack(conn net.Conn) {
	g.fallbackOnce.Do(func() {
		g.fallbackLn = newChanListener(conn.LocalAddr())
		g.fallbackSrv = &http.Server{
			Handler:           g.fallback,
			ReadHeaderTimeout: g.headerTimeout,
			IdleTimeout:       g.idleTimeout,
			ErrorLog:          slogLogger(g.log),
		}
		g.fallbackWG.Add(1)
		go func() {
			defer g.fallbackWG.Done()
			g.fallbackSrv.Serve(g.fallbackLn)
		}()
	})
	if g.fallbackLn == nil {
		conn.Close() // the gateway closed before it ever handed one back
		return
	}
	g.fallbackLn.push(conn)
}

// chanListener is a net.Listener whose connections are handed to it.
type chanListener struct {
	addr  net.Addr
	ch    chan net.Conn
	done  chan struct{}
	close sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

package api

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/kiln-serve/kiln/internal/clock"
)

// FailureLimiter limits failed authentications per client IP address with
// a token bucket: each failure takes a token, a client without one is
// refused before its credentials are even looked at, and tokens come back
// at a steady rate. Successful requests cost nothing, so a client with
// good credentials is never slowed; a guesser gets Burst tries, then one
// per Every.
//
// The address is the connection's: behind a proxy every client shares the
// proxy's bucket. Limiting by access key ID instead would let anyone lock
// a known key out, so Kiln does not.
type FailureLimiter struct {
	// Burst is how many failures a client may have in a row. If zero, 20.
	Burst int
	// Every is how often a client gets one more try back. If zero, 3s
	// (20 a minute).
	Every time.Duration
	// Clock drives the refill. If nil, the wall clock is used.
	Clock clock.Clock

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the limiter's memory; full buckets are forgotten first.
const maxBuckets = 1 << 16

func (l *FailureLimiter) params() (float64, time.Duration, clock.Clock) {
	burst, every, c := l.Burst, l.Every, l.Clock
	if burst <= 0 {
		burst = 20
	}
	if every <= 0 {
		every = 3 * time.Second
	}
	if c == nil {
		c = clock.Real()
	}
	return float64(burst), every, c
}

// level returns the bucket of ip refilled to now; l.mu is held.
func (l *FailureLimiter) level(ip string, now time.Time) (*bucket, bool) {
	burst, every, _ := l.params()
	b, ok := l.buckets[ip]
	if !ok {
		return nil, false
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens += float64(d) / float64(every)
		if b.tokens > burst {
			b.tokens = burst
		}
		b.at = now
	}
	return b, true
}

// Wait returns zero if the client at remote (an address as in
// http.Request.RemoteAddr) may try to authenticate, else how long until it
// may.
func (l *FailureLimiter) Wait(remote string) time.Duration {
	if l == nil {
		return 0
	}
	_, every, c := l.params()
	ip := clientIP(remote)
	now := c.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.level(ip, now)
	if !ok || b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(every))
}

// Fail records a failed authentication by the client at remote.
func (l *FailureLimiter) Fail(remote string) {
	if l == nil {
		return
	}
	burst, _, c := l.params()
	ip := clientIP(remote)
	now := c.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.level(ip, now)
	if !ok {
		if l.buckets == nil {
			l.buckets = map[string]*bucket{}
		}
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: burst, at: now}
		l.buckets[ip] = b
	}
	b.tokens--
	if b.tokens < 0 {
		b.tokens = 0
	}
}

// prune forgets the buckets that are full again, and if that is not
// enough, all of them: a forgotten bucket is a full one, which errs on the
// side of letting clients try. l.mu is held.
func (l *FailureLimiter) prune(now time.Time) {
	burst, _, _ := l.params()
	for ip := range l.buckets {
		if b, _ := l.level(ip, now); b.tokens >= burst {
			delete(l.buckets, ip)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// throttled is the error of a client that failed too often.
func throttled(wait time.Duration) *AuthError {
	secs := int((wait + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &AuthError{Status: http.StatusTooManyRequests, Code: "ThrottlingException", QueryCode: "Throttling", retryAfter: secs,
		Message: "Too many failed authentications from this address; try again in " + strconv.Itoa(secs) + "s with valid credentials."}
}

// Package awstest holds what the tests that drive Kiln with the AWS SDK for
// Go share.
package awstest

import (
	"io"
	"net/http"
)

// Transport wraps base (http.DefaultTransport when nil) so that the request
// bodies the SDK hands it reach net/http without their WriteTo method.
//
// Once the SDK has a response, it closes the request body, and a closed SDK
// body answers WriteTo with io.EOF. net/http reads a body once more after
// its Content-Length bytes, to check that there are no more; when the server
// answers fast (as Kiln does on loopback) and the client is busy, that check
// can come after the close. net/http then takes the io.EOF for a failed
// write and closes the connection, which cuts a streamed answer short with
// "use of closed network connection". Without WriteTo the check is a Read,
// whose io.EOF is the normal end of the body.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return transport{base}
}

type transport struct{ base http.RoundTripper }

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r2 := r.Clone(r.Context())
		r2.Body = readCloser{r.Body}
		r = r2
	}
	return t.base.RoundTrip(r)
}

// readCloser hides every method of the body but Read and Close.
type readCloser struct{ io.ReadCloser }

// CloseIdleConnections closes the idle connections of the wrapped transport,
// so that http.Client.CloseIdleConnections reaches it.
func (t transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

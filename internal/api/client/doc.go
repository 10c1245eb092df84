// Package client calls a Kiln server's native API. Its Client implements
// kiln.Service over HTTP, following list pages and signing each request with
// an access key (SigV4) or sending a token; the kiln CLI is built on it.
package client

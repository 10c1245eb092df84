// Package native serves Kiln's own JSON API under /v1: each route decodes
// one request, makes one call on kiln.Service and encodes the answer, and
// lists come a page at a time (limit, next, the Kiln-Next-Token header).
// Package client calls it from Go.
package native

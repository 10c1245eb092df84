// Package server assembles one running Kiln from its parts: the store, the
// metrics store, the gateway, the fleet manager, the alarm engine and the
// deployment controller, with the HTTP APIs in front. It is the only package
// that knows all of them; the parts meet through the small interfaces each
// defines, and this package plugs the concrete types in.
//
// The store is the single source of truth. The server watches it: every
// change to an endpoint re-syncs the fleet manager, rebuilds the gateway's
// routing table and wakes the controller; every change to an alarm reloads
// the alarm engine.
package server

// Package e2e tests Kiln the way its users run it: the kiln binary built
// from source, started as a real process on a free loopback port with a
// temporary data dir, driven through its CLI and HTTP APIs, with real
// instance processes of the demo model behind it.
package e2e

// Package server wires one running Kiln: New opens the store and builds the
// parts (the service, the gateway, the fleet manager, the metrics, the alarm
// engine and judges, the deployment controller, the HTTP APIs behind their
// guard), plugging each into the small interfaces the others define; Run
// starts them and returns once Kiln listens; Close stops every part, every
// instance and every goroutine, and closes the store. Its loops follow the
// store's watch, re-syncing the fleet manager and the gateway's routes
// (gateway.Routes) and waking the controller on every endpoint change, and
// reloading alarms into the engine.
package server

// Package service implements kiln.Service over the store: every API call
// is validated, checked against the quotas, and written with
// compare-and-swap, and nothing else is written on a client's behalf. It
// gets what it needs of the running parts at construction, through the
// small interfaces it defines (Metrics, Fleet, Controller, AlarmStates).
// Records gives the controller and the alarm engine the same records,
// setting aside those that do not decode or are invalid. The subpackage
// servicetest holds the cases every store runs it through.
package service

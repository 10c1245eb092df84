// Package ui serves Kiln's web dashboard under /ui/: an overview of every
// endpoint, its instances and any deployment in progress, and a page per
// endpoint with live charts of traffic shares, invocations, errors, latency
// and alarm thresholds, the deployment timeline, and buttons to stop or roll
// back an update.
//
// The pages are plain HTML, CSS and JavaScript embedded in the binary; the
// one third-party asset, uPlot, is vendored under static/vendor by
// scripts/ui-assets, so serving the dashboard needs no network and building
// Kiln needs no npm. The pages read and change state through the native /v1
// API, like the CLI. Live data comes from one server-sent events stream per
// open endpoint page, GET /ui/api/events?endpoint=NAME, which sends a
// Snapshot every second.
package ui

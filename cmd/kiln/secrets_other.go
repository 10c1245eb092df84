//go:build !linux

package main

// hideMemory can do nothing here: there is no /proc/<pid>/environ to hide
// on most other systems, and no portable way to refuse a debugger.
func hideMemory() error { return nil }

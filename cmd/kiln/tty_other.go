//go:build !linux

package main

// terminal: off Linux, a watch prints lines.
func (c *cli) terminal() bool { return false }

func (c *cli) termWidth() int { return 80 }

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// terminal reports whether the output is a terminal that takes escape
// sequences: a watch redraws in place there, and prints lines elsewhere.
func (c *cli) terminal() bool {
	f, ok := c.out.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// termWidth is the output terminal's width in columns, 80 if unknown.
func (c *cli) termWidth() int {
	if f, ok := c.out.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return int(ws.Col)
		}
	}
	return 80
}

package main

import (
	"os"
	"path/filepath"
	"strings"
)

// selfCommand is how to run this kiln again in a hint: "go run ./cmd/kiln"
// when it runs from go run (whose binary lives in Go's build cache, under
// a go-build directory, and is gone once it exits), else the name it was
// run by, as typed: "kiln" from PATH, "./kiln" or a full path otherwise.
func selfCommand() string {
	return selfCommandFor(os.Args[0], executable())
}

func executable() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return exe
}

func selfCommandFor(arg0, exe string) string {
	for _, p := range []string{exe, arg0} {
		if strings.Contains(filepath.ToSlash(p), "/go-build") {
			return "go run ./cmd/kiln"
		}
	}
	if arg0 == "" {
		return "kiln"
	}
	return arg0
}

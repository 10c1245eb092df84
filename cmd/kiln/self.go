package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-serve/kiln/internal/fleet"
	"github.com/kiln-serve/kiln/internal/server"
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

// serveKilnBinary is the file a model's Image `kiln demo-model` runs under
// `kiln serve`: Kiln's own executable, or, when the instance user cannot
// run it (go run builds Kiln in a directory only its user may enter; a
// binary under /root), the copy in DATA_DIR/bin that `kiln demo` makes.
// "" leaves the choice to the server (its own executable).
func serveKilnBinary(cfg server.Config, warn io.Writer) string {
	if cfg.InstanceUser == "" {
		return ""
	}
	exe, err := os.Executable()
	if err != nil || fleet.UserCanExecute(cfg.InstanceUser, exe) == nil {
		return ""
	}
	image, err := demoImage(cfg.DataDir)
	if err != nil {
		fmt.Fprintf(warn, "kiln: warning: instances run as %s, which cannot run %s, and no copy could be made for \"kiln demo-model\": %v\n", cfg.InstanceUser, exe, err)
		return ""
	}
	return strings.TrimSuffix(image, " demo-model")
}

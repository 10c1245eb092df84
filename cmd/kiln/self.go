package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kiln-serve/kiln/internal/fleet"
	"github.com/kiln-serve/kiln/internal/server"
)

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

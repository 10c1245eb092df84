package server

import "os"

// kilnBinary is the file a model's Image runs for the bare word "kiln":
// the one configured, or else the running executable, so that
// `kiln demo-model` works when no kiln is on PATH (go run, a binary run
// from its build directory). When the executable cannot be found, "kiln"
// is looked up in PATH as before.
func kilnBinary(configured string) string {
	if configured != "" {
		return configured
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return exe
}

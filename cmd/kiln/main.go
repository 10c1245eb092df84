// Command kiln serves machine-learning models behind named endpoints and
// replaces the model behind a live endpoint safely. `kiln serve` runs the
// server; the other commands are its client.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kiln-serve/kiln"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kiln:", describeError(err))
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		os.Exit(1)
	}
}

type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func describeError(err error) string {
	var ke *kiln.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

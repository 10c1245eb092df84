package main

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// describeError is the message kiln prints for err: with the context the
// command wrapped around the server's message (apply's "model demo-v1: "),
// and a hint where one helps.
func describeError(err error) string {
	msg := err.Error()
	if errors.Is(err, syscall.ECONNREFUSED) {
		msg += "\nNo Kiln server answers there: start one with `" + selfCommand() + " serve`, or name yours with --server URL or KILN_SERVER."
	}
	return msg
}

// strictUsage makes every mistake in a command line an error that says
// what is wrong, with the command's usage, and exit status 2: unknown
// subcommands (with suggestions), missing or extra arguments, bad flags.
func strictUsage(root *cobra.Command) {
	root.SuggestionsMinimumDistance = 2
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError(cmd, err.Error())
	})
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
			cmd.Args = cobra.ArbitraryArgs
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return cmd.Help()
				}
				msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					msg += "; did you mean " + strings.Join(s, " or ") + "?"
				}
				return usageError(cmd, msg)
			}
		} else if check := cmd.Args; check != nil {
			cmd.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return usageError(cmd, argsProblem(cmd, args, err))
				}
				return nil
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// usageError is a mistake in the command line: exit status 2.
func usageError(cmd *cobra.Command, msg string) error {
	use := cmd.UseLine()
	if cmd.HasSubCommands() {
		use = cmd.CommandPath() + " COMMAND"
	}
	// main prints "kiln: " before the message: the root's name once.
	if cmd.HasParent() {
		msg = strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ") + ": " + msg
	}
	return withStatus(fmt.Errorf("%s\nUsage: %s\nSee '%s --help'.", msg, use, cmd.CommandPath()), exitUsage)
}

// argsProblem says which arguments are missing or too many, by the names
// the command's Use line gives them.
func argsProblem(cmd *cobra.Command, args []string, err error) string {
	var names []string
	variadic := false
	for _, f := range strings.Fields(cmd.Use)[1:] {
		if strings.HasPrefix(f, "-") || strings.HasPrefix(f, "[") {
			break
		}
		if n, ok := strings.CutSuffix(f, "..."); ok {
			names, variadic = append(names, n), true
			break
		}
		names = append(names, f)
	}
	switch {
	case len(args) < len(names):
		return "missing " + strings.Join(names[len(args):], " and ")
	case len(args) > len(names) && !variadic && len(names) > 0:
		return fmt.Sprintf("too many arguments: %q; it takes %s", args[len(names):], strings.Join(names, " "))
	case len(args) > 0 && len(names) == 0:
		return fmt.Sprintf("unexpected arguments: %q", args)
	}
	return err.Error()
}

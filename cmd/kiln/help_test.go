package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpShowsNoSecret guards the flags whose defaults come from secret
// variables: help prints a flag's default, and must not print a secret.
func TestHelpShowsNoSecret(t *testing.T) {
	const secret = "help-secret-0123456789abcdef"
	t.Setenv("KILN_SECRET_ACCESS_KEY", secret)
	t.Setenv("KILN_TOKEN", "kiln1.help-token-secret")
	for _, args := range [][]string{{"--help"}, {"get", "--help"}, {"serve", "--help"}, {"token", "--help"}} {
		var out bytes.Buffer
		root := newRoot(&out, &out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("kiln %s: %v", strings.Join(args, " "), err)
		}
		if got := out.String(); strings.Contains(got, secret) || strings.Contains(got, "help-token-secret") {
			t.Errorf("kiln %s prints a secret:\n%s", strings.Join(args, " "), got)
		}
		if !strings.Contains(out.String(), "Usage") {
			t.Errorf("kiln %s printed no usage:\n%s", strings.Join(args, " "), out.String())
		}
	}
}

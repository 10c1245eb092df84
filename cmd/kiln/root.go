package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln/internal/api/client"
)

// cli holds what every client command shares.
type cli struct {
	out, errOut io.Writer
	server      string
	token       string
	output      string
	auth        clientAuth
}

func (c *cli) client() *client.Client {
	return &client.Client{BaseURL: c.server, Token: c.token, AccessKeyID: c.auth.accessKeyID, SecretAccessKey: c.auth.secretAccessKey,
		HTTP: c.auth.httpClient(c.errOut)}
}

func (c *cli) json() bool { return c.output == "json" }

// printJSON writes v as indented JSON.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows under a header, aligned for people.
func (c *cli) table(header []string, rows [][]string) {
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	for i, h := range header {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, h)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, v)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newRoot(out, errOut io.Writer) *cobra.Command {
	c := &cli{out: out, errOut: errOut}
	root := &cobra.Command{
		Use:   "kiln",
		Short: "Serve models behind endpoints and replace them safely",
		Long: `Kiln serves machine-learning models behind named endpoints and replaces the model
behind a live endpoint safely: blue/green deployments with all-at-once, canary or
linear traffic shifting, baking periods watched by alarms, and automatic rollback.

"kiln serve" runs the server; the other commands talk to it at --server. When the server
has credentials, they sign their requests with an access key (--access-key-id and
--secret-access-key, or KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY), or send a token
from "kiln token" (--token or KILN_TOKEN).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	pf := root.PersistentFlags()
	pf.StringVar(&c.server, "server", envOr("KILN_SERVER", "http://127.0.0.1:8080"), "Kiln server to talk to (env KILN_SERVER)")
	pf.StringVar(&c.token, "token", os.Getenv("KILN_TOKEN"), "a token from 'kiln token' (kiln1...), used when no access key is given (env KILN_TOKEN)")
	c.auth.register(pf)
	// Help prints a flag's default; one read from a secret's variable must
	// not show there.
	for _, name := range []string{"token", "secret-access-key"} {
		pf.Lookup(name).DefValue = ""
	}
	pf.StringVarP(&c.output, "output", "o", "table", "output format: table or json")

	root.AddCommand(
		newServeCmd(c),
		newDemoCmd(c),
		newDemoModelCmd(c),
		newApplyCmd(c),
		newGetCmd(c),
		newDescribeCmd(c),
		newDeleteCmd(c),
		newInvokeCmd(c),
		newLogsCmd(c),
		newDeployCmd(c),
		newWeightsCmd(c),
		newRollbackCmd(c),
		newStopCmd(c),
		newStatusCmd(c),
		newHistoryCmd(c),
		newAlarmsCmd(c),
		newMetricsCmd(c),
		newTokenCmd(c),
		newStoreCmd(c),
		&cobra.Command{
			Use:     "version",
			Short:   "Print Kiln's version",
			Example: "  kiln version",
			Args:    cobra.NoArgs,
			Run:     func(*cobra.Command, []string) { fmt.Fprintln(out, "kiln", version) },
		},
	)
	strictUsage(root)
	return root
}

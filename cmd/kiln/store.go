package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln/internal/store"
)

// storeLockTimeout is how long `kiln store` waits for the data file: a
// running Kiln holds it for as long as it runs, so waiting longer would
// only delay the error.
const storeLockTimeout = 500 * time.Millisecond

func newStoreCmd(c *cli) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Inspect and repair the embedded store of a stopped Kiln",
		Long: `The store commands open the embedded store in --data-dir directly, while Kiln is
not running (a running Kiln holds the file locked, and the commands say so).
They show every record with its revisions and whether its checksum matches,
print a record's value even if it is damaged, and delete a record: that is how
an operator removes a damaged record, or one that stops Kiln from working.
Keys are <kind>/<name>: models/NAME, endpoint-configs/NAME, endpoints/NAME,
alarms/NAME, history/ENDPOINT/..., alarm-history/ALARM/...`,
		Example: `  kiln store list --data-dir ./kiln-data
  kiln store list --data-dir ./kiln-data alarms/
  kiln store get --data-dir ./kiln-data models/demo-v1
  kiln store delete --data-dir ./kiln-data alarms/broken`,
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", envOr("KILN_DATA_DIR", "./kiln-data"), "data directory of the stopped Kiln (env KILN_DATA_DIR)")

	list := &cobra.Command{
		Use:   "list [PREFIX]",
		Short: "List the keys, with their revisions and checksum status",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			st, err := openStoreOffline(dataDir)
			if err != nil {
				return err
			}
			defer st.Close()
			type row struct {
				Key            string `json:"Key"`
				CreateRevision int64  `json:"CreateRevision"`
				ModRevision    int64  `json:"ModRevision"`
				Bytes          int    `json:"Bytes"`
				Checksum       string `json:"Checksum"` // ok | damaged
				Error          string `json:"Error,omitempty"`
			}
			var rows []row
			damaged := 0
			err = st.Scan(cmd.Context(), prefix, func(r store.Record) error {
				rw := row{Key: r.Key, CreateRevision: r.CreateRevision, ModRevision: r.ModRevision, Bytes: len(r.Value), Checksum: "ok"}
				if r.Err != nil {
					rw.Checksum, rw.Error = "damaged", r.Err.Error()
					damaged++
				}
				rows = append(rows, rw)
				return nil
			})
			if err != nil {
				return err
			}
			if c.json() {
				if rows == nil {
					rows = []row{}
				}
				return c.printJSON(rows)
			}
			var table [][]string
			for _, r := range rows {
				table = append(table, []string{r.Key, strconv.FormatInt(r.CreateRevision, 10), strconv.FormatInt(r.ModRevision, 10), strconv.Itoa(r.Bytes), r.Checksum})
			}
			c.table([]string{"KEY", "CREATED", "MODIFIED", "BYTES", "CHECKSUM"}, table)
			if damaged > 0 {
				fmt.Fprintf(c.errOut, "%d damaged record(s): see them with `%[2]s store get`, remove them with `%[2]s store delete`\n", damaged, selfCommand())
			}
			return nil
		},
	}

	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a record's value, even a damaged one (then flagged, with exit status 3)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openStoreOffline(dataDir)
			if err != nil {
				return err
			}
			defer st.Close()
			r, err := st.Inspect(cmd.Context(), args[0])
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no record %q in %s", args[0], dataDir)
			}
			if err != nil {
				return err
			}
			if c.json() {
				out := map[string]any{
					"Key": r.Key, "CreateRevision": r.CreateRevision, "ModRevision": r.ModRevision,
					"Value": string(r.Value), "Checksum": "ok",
				}
				if r.Err != nil {
					out["Checksum"], out["Error"] = "damaged", r.Err.Error()
				}
				if err := c.printJSON(out); err != nil {
					return err
				}
			} else {
				c.out.Write(r.Value)
				if len(r.Value) > 0 && r.Value[len(r.Value)-1] != '\n' {
					fmt.Fprintln(c.out)
				}
			}
			if r.Err != nil {
				return withStatus(fmt.Errorf("DAMAGED: %w\nThe value above is as found on disk, and Kiln will not serve it; "+
					"remove the record with `kiln store delete --data-dir %s %s`", r.Err, dataDir, r.Key), 3)
			}
			return nil
		},
	}

	del := &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete a record, damaged or not",
		Long: `Delete one record from the store of a stopped Kiln, whatever its state: a record
whose checksum does not match, or one Kiln cannot use. Nothing else changes:
deleting an endpoint's record this way leaves its history, and deleting a model
that endpoint configs name leaves them naming it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openStoreOffline(dataDir)
			if err != nil {
				return err
			}
			defer st.Close()
			rev, err := st.Delete(cmd.Context(), args[0], store.Any)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no record %q in %s", args[0], dataDir)
			}
			if err != nil {
				return err
			}
			if err := st.Close(); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "deleted %s at revision %d\n", args[0], rev)
			return nil
		},
	}
	cmd.AddCommand(list, get, del)
	return cmd
}

// openStoreOffline opens the store of a data dir that must already hold one:
// these commands never create a store.
func openStoreOffline(dataDir string) (*store.Bolt, error) {
	path := filepath.Join(dataDir, "kiln.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no Kiln store in %s (no kiln.db there)", dataDir)
	}
	st, err := store.Open(path, &store.Options{LockTimeout: storeLockTimeout})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%s is in use, most likely by a running `kiln serve`: stop it first (%w)", path, err)
	}
	return st, err
}

// statusError is an error that also sets the exit status.
type statusError struct {
	err    error
	status exitError
}

func withStatus(err error, status int) error { return &statusError{err, exitError(status)} }

func (e *statusError) Error() string   { return e.err.Error() }
func (e *statusError) Unwrap() []error { return []error{e.err, e.status} }

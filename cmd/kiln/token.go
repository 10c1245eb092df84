package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kiln-serve/kiln/internal/api"
)

// clientAuth is how client commands authenticate and reach the server.
type clientAuth struct {
	accessKeyID, secretAccessKey string
	caCert                       string
}

func (a *clientAuth) register(pf *pflag.FlagSet) {
	pf.StringVar(&a.accessKeyID, "access-key-id", os.Getenv("KILN_ACCESS_KEY_ID"), "access key ID to sign requests with, SigV4 (env KILN_ACCESS_KEY_ID)")
	pf.StringVar(&a.secretAccessKey, "secret-access-key", os.Getenv("KILN_SECRET_ACCESS_KEY"), "its secret access key; it signs, it is never sent (env KILN_SECRET_ACCESS_KEY)")
	pf.StringVar(&a.caCert, "ca-cert", os.Getenv("KILN_CA_CERT"), "PEM file of the CA (or self-signed certificate) to trust for an https:// --server (env KILN_CA_CERT)")
}

// httpClient is the HTTP client of every client command: the system's
// roots, or --ca-cert's, for https:// servers.
func (a *clientAuth) httpClient(errOut io.Writer) *http.Client {
	hc := &http.Client{Timeout: 90 * time.Second}
	if a.caCert == "" {
		return hc
	}
	pem, err := os.ReadFile(a.caCert)
	pool := x509.NewCertPool()
	if err == nil && !pool.AppendCertsFromPEM(pem) {
		err = fmt.Errorf("no PEM certificate in it")
	}
	if err != nil {
		// Trust nothing rather than the system: every https call fails
		// with a certificate error after this message.
		fmt.Fprintf(errOut, "kiln: --ca-cert %s: %v\n", a.caCert, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	hc.Transport = tr
	return hc
}

func newTokenCmd(c *cli) *cobra.Command {
	var ttl time.Duration
	var role string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a short-lived token for curl, scripts and the dashboard",
		Long: `token asks the server, in a request signed with your access key (--access-key-id and
--secret-access-key, or KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY), for a token
that acts with the key's role, or the narrower --role, until it expires (--ttl, at most
168h). Send it as "Authorization: Bearer TOKEN", give it to the CLI with --token or
KILN_TOKEN, or paste it into the dashboard's sign-in form. The token is printed alone
on standard output; its expiry goes to standard error.

A token cannot be renewed with itself. It stops working when it expires, when its
key's secret changes or the key is removed, or when the key's role no longer
includes the token's.`,
		Example: `  export KILN_TOKEN=$(kiln token --ttl 1h)
  curl -H "Authorization: Bearer $(kiln token --role read)" http://127.0.0.1:8080/v1/endpoints`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.auth.accessKeyID == "" || c.auth.secretAccessKey == "" {
				return fmt.Errorf("kiln token needs an access key to sign its request: --access-key-id and --secret-access-key, or KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY")
			}
			if ttl <= 0 || ttl > api.MaxTokenTTL || ttl%time.Second != 0 {
				return fmt.Errorf("--ttl %s: want whole seconds from 1s to %s", ttl, api.MaxTokenTTL)
			}
			if role != "" {
				if _, err := api.ParseRole(role); err != nil {
					return fmt.Errorf("--role: %w", err)
				}
			}
			out, err := c.client().MintToken(cmd.Context(), int64(ttl/time.Second), role)
			if err != nil {
				return fmt.Errorf("mint token: %w", err)
			}
			if c.json() {
				return c.printJSON(out)
			}
			fmt.Fprintln(c.out, out.Token)
			fmt.Fprintf(c.errOut, "token of %s, role %s, expires %s\n", out.AccessKeyID, out.Role, out.Expiration.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", api.DefaultTokenTTL, "how long the token lasts (at most 168h)")
	cmd.Flags().StringVar(&role, "role", "", "the token's role: read, invoke, deploy or admin, within the key's own (default the key's)")
	return cmd
}

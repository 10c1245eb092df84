package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newInvokeCmd(c *cli) *cobra.Command {
	var body, contentType, accept, target, custom string
	cmd := &cobra.Command{
		Use:   "invoke ENDPOINT --body JSON|@FILE",
		Short: "Send one request to an endpoint and print the model's answer",
		Example: `  kiln invoke demo --body '{"instances": [[1, 2, 3, 4]]}'
  kiln invoke demo --body @request.json --target-variant AllTraffic`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			if strings.HasPrefix(body, "@") {
				var err error
				if data, err = os.ReadFile(body[1:]); err != nil {
					return fmt.Errorf("read body: %w", err)
				}
			} else {
				data = []byte(body)
			}
			u := strings.TrimRight(c.server, "/") + "/endpoints/" + url.PathEscape(args[0]) + "/invocations"
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, u, bytes.NewReader(data))
			if err != nil {
				return fmt.Errorf("build request: %w", err)
			}
			req.Header.Set("Content-Type", contentType)
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			if target != "" {
				req.Header.Set("X-Amzn-SageMaker-Target-Variant", target)
			}
			if custom != "" {
				req.Header.Set("X-Amzn-SageMaker-Custom-Attributes", custom)
			}
			cl := c.client()
			if err := cl.Authorize(cmd.Context(), req, data); err != nil {
				return err
			}
			resp, err := cl.HTTP.Do(req)
			if err != nil {
				return fmt.Errorf("invoke %s: %w", args[0], err)
			}
			defer resp.Body.Close()
			if v := resp.Header.Get("X-Amzn-Invoked-Production-Variant"); v != "" {
				fmt.Fprintf(c.errOut, "variant: %s\n", v)
			}
			last := &lastByte{w: c.out}
			if _, err := io.Copy(last, resp.Body); err != nil {
				return fmt.Errorf("read answer: %w", err)
			}
			// An error's body is a message for people, and the error line
			// follows it: end it with a newline, as a terminal does an
			// answer. An answer piped elsewhere stays as the model sent it.
			if last.n > 0 && last.b != '\n' && (resp.StatusCode >= 300 || c.terminal()) {
				fmt.Fprintln(c.out)
			}
			if resp.StatusCode >= 300 {
				return fmt.Errorf("the endpoint answered %s", resp.Status)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&body, "body", "", "request body, or @FILE to read it from a file")
	f.StringVar(&contentType, "content-type", "application/json", "Content-Type of the body")
	f.StringVar(&accept, "accept", "", "Accept header")
	f.StringVar(&target, "target-variant", "", "send to this variant instead of choosing by weight")
	f.StringVar(&custom, "custom-attributes", "", "X-Amzn-SageMaker-Custom-Attributes header")
	cmd.MarkFlagRequired("body")
	return cmd
}

// lastByte passes writes through and remembers the last byte written.
type lastByte struct {
	w io.Writer
	n int64
	b byte
}

func (l *lastByte) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.n += int64(n)
		l.b = p[n-1]
	}
	return n, err
}

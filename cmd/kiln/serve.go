package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln/internal/api"
	"github.com/kiln-serve/kiln/internal/demomodel"
	"github.com/kiln-serve/kiln/internal/gateway"
	"github.com/kiln-serve/kiln/internal/server"
	"github.com/kiln-serve/kiln/internal/service"
)

// serveFlags are the settings of `kiln serve` and `kiln demo`.
type serveFlags struct {
	addr, dataDir, region, account, logLevel  string
	credentialsFile                           string
	invokeAuth                                bool
	tlsCert, tlsKey                           string
	insecureHTTP, openMetrics                 bool
	allow                                     []string
	allowedHosts                              []string
	quotas                                    []string
	startupTimeout, stopTimeout, instanceWait time.Duration
	instanceUser                              string
}

func (f *serveFlags) register(cmd *cobra.Command, defaultDataDir string) {
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", envOr("KILN_ADDR", "127.0.0.1:8080"), "address to listen on for the APIs, invocations, /metrics and /ui (env KILN_ADDR)")
	fl.StringVar(&f.dataDir, "data-dir", envOr("KILN_DATA_DIR", defaultDataDir), "directory for the embedded store and instance logs (env KILN_DATA_DIR)")
	fl.StringVar(&f.region, "region", envOr("KILN_REGION", "us-east-1"), "region shown in ARNs (env KILN_REGION)")
	fl.StringVar(&f.account, "account", envOr("KILN_ACCOUNT", "000000000000"), "12-digit account shown in ARNs (env KILN_ACCOUNT)")
	fl.StringArrayVar(&f.allow, "allow-command", nil, "what models may run (repeatable): an executable (any arguments, but an interpreter only with a script), or a command line with path.Match patterns per argument and ** for any further ones, e.g. 'python3 /opt/m/serve.py --port *'; empty allows any; Kiln itself runs only as 'kiln demo-model'")
	fl.StringVar(&f.instanceUser, "instance-user", "", "user instances run as (needs Kiln to run as root); default nobody when Kiln runs as root, else Kiln's own user")
	fl.DurationVar(&f.startupTimeout, "startup-timeout", 240*time.Second, "how long a new instance may take to pass its health check")
	fl.DurationVar(&f.stopTimeout, "stop-timeout", 30*time.Second, "how long a stopping instance gets after SIGTERM before SIGKILL")
	fl.DurationVar(&f.instanceWait, "instance-wait", gateway.DefaultInstanceWait, "how long an invocation waits for an instance of its endpoint to start (after a restart, say) before it gets a 503; 0 for no wait")
	fl.StringVar(&f.credentialsFile, "credentials-file", os.Getenv("KILN_CREDENTIALS_FILE"), "access keys that may call Kiln, in the AWS CLI's credentials format (env KILN_CREDENTIALS_FILE); also KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY")
	fl.StringSliceVar(&f.allowedHosts, "allowed-host", allowedHostsEnv(), "a further name Kiln answers to in the Host header, besides localhost, loopback addresses and --addr's host (repeatable; .example.com for a domain and its subdomains; * for any, only with credentials; env KILN_ALLOWED_HOSTS, comma-separated)")
	fl.BoolVar(&f.invokeAuth, "invoke-auth", false, "require authentication for invocations too (SigV4, or a token from 'kiln token'), by a key whose role allows invoke")
	fl.StringVar(&f.tlsCert, "tls-cert", os.Getenv("KILN_TLS_CERT"), "serve HTTPS (and HTTP/2) with this PEM certificate chain (env KILN_TLS_CERT); needs --tls-key")
	fl.StringVar(&f.tlsKey, "tls-key", os.Getenv("KILN_TLS_KEY"), "the PEM private key of --tls-cert (env KILN_TLS_KEY)")
	fl.BoolVar(&f.insecureHTTP, "insecure-http", false, "serve plain HTTP beyond loopback although credentials are set (behind a TLS-terminating proxy)")
	fl.BoolVar(&f.openMetrics, "open-metrics", false, "serve /metrics without authentication even when credentials are set")
	fl.StringArrayVar(&f.quotas, "quota", nil, "change a limit on what clients can store, KIND=N or KIND=unlimited (repeatable); KIND is one of "+strings.Join(service.QuotaKinds(), ", ")+" (defaults: 1000 models, 1000 endpoint-configs, 100 endpoints, 5000 alarms, 262144 record-bytes)")
	fl.StringVar(&f.logLevel, "log-level", envOr("KILN_LOG_LEVEL", "info"), "debug, info, warn or error")
}

func (f *serveFlags) config(c *cli) (server.Config, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return server.Config{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	if len(f.account) != 12 || strings.Trim(f.account, "0123456789") != "" {
		return server.Config{}, fmt.Errorf("--account %q: want 12 digits", f.account)
	}
	if f.instanceWait < 0 {
		return server.Config{}, fmt.Errorf("--instance-wait %s: want 0 (no wait) or more", f.instanceWait)
	}
	wait := f.instanceWait
	if wait == 0 {
		wait = -1 // the gateway's "no wait"
	}
	creds, err := api.LoadCredentials(f.credentialsFile, os.Getenv)
	if err != nil {
		return server.Config{}, err
	}
	if err := forgetSecrets(); err != nil {
		return server.Config{}, err
	}
	instanceUser, _ := f.instanceUserName()
	quotas := service.DefaultQuotas()
	for _, q := range f.quotas {
		if err := quotas.Set(q); err != nil {
			return server.Config{}, err
		}
	}
	return server.Config{
		Credentials:     creds,
		InvokeAuth:      f.invokeAuth,
		AllowedHosts:    f.allowedHosts,
		TLSCertFile:     f.tlsCert,
		TLSKeyFile:      f.tlsKey,
		InsecureHTTP:    f.insecureHTTP,
		OpenMetrics:     f.openMetrics,
		Addr:            f.addr,
		DataDir:         f.dataDir,
		Region:          f.region,
		Account:         f.account,
		AllowedCommands: f.allow,
		InstanceUser:    instanceUser,
		StartupTimeout:  f.startupTimeout,
		StopTimeout:     f.stopTimeout,
		InstanceWait:    wait,
		Quotas:          &quotas,
		Logger:          slog.New(slog.NewTextHandler(c.errOut, &slog.HandlerOptions{Level: lvl})),
	}, nil
}

func newServeCmd(c *cli) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Kiln server",
		Long: `serve runs Kiln: the native API under /v1, invocations at
POST /endpoints/NAME/invocations, /healthz, /metrics and the dashboard at /ui, all on
--addr. State lives in the embedded store under --data-dir; endpoints that existed
when Kiln stopped come back on their own.`,
		Example: `  kiln serve
  kiln serve --addr 127.0.0.1:9000 --data-dir /var/lib/kiln --allow-command /usr/local/bin/model-server
  kiln serve --addr 0.0.0.0:8443 --credentials-file /etc/kiln/credentials --tls-cert cert.pem --tls-key key.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.config(c)
			if err != nil {
				return err
			}
			cfg.KilnBinary = serveKilnBinary(cfg, c.errOut)
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			if err := srv.Run(cmd.Context()); err != nil {
				srv.Close()
				return err
			}
			select {
			case <-cmd.Context().Done():
			case <-srv.Failed():
			}
			return srv.Close()
		},
	}
	f.register(cmd, "./kiln-data")
	return cmd
}

func newDemoModelCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "demo-model",
		Short: "Run the demo model server (an inference container for Kiln's process runtime)",
		Long: `demo-model serves a small logistic-regression model with the inference container
contract: GET /ping and POST /invocations on $SAGEMAKER_BIND_TO_PORT. Kiln starts it as
a model's Image. Its faults are set from the environment: KILN_DEMO_ERROR_RATE,
KILN_DEMO_ERROR_STATUS, KILN_DEMO_LATENCY_MS, KILN_DEMO_LATENCY_JITTER_MS,
KILN_DEMO_NEVER_HEALTHY, KILN_DEMO_STARTUP_DELAY_MS, KILN_DEMO_CRASH_AFTER; its
version label from KILN_DEMO_VERSION; its weights from KILN_MODEL_DATA_URL.`,
		Example: `  SAGEMAKER_BIND_TO_PORT=9001 kiln demo-model
  # as a model's image:
  kiln apply -f demo.yaml   # with  Image: kiln demo-model`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return demomodel.Main(cmd.Context(), os.Getenv, c.out, c.errOut)
		},
	}
}

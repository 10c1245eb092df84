package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/server"
)

func newDemoCmd(c *cli) *cobra.Command {
	var f serveFlags
	var traffic float64
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run Kiln with a demo endpoint of the demo model",
		Long: `demo runs the server as "kiln serve" does and creates, if they are missing, the demo
model in three versions (demo-v1, demo-v2, and demo-bad which fails every request),
an endpoint config of 2 instances for each, the alarm demo-5xx, and the endpoint
demo on demo-v1. It prints how to invoke the endpoint and how to deploy to it, and
sends the endpoint --traffic invocations a second, so that its metrics, alarms and
deployments have requests to watch.`,
		Example: `  kiln demo
  go run ./cmd/kiln demo --addr 127.0.0.1:9000 --traffic 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.config(c)
			if err != nil {
				return err
			}
			image, err := demoImage(cfg.DataDir)
			if err != nil {
				return err
			}
			name, auto := f.instanceUserName()
			cfg.InstanceUser = demoInstanceUser(name, auto, strings.TrimSuffix(image, " demo-model"), c.errOut)
			cfg.KilnBinary = strings.TrimSuffix(image, " demo-model") // what `kiln demo-model` runs
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			if err := srv.Run(ctx); err != nil {
				srv.Close()
				return err
			}
			res := demoResources(image)
			if _, err := srv.Service().GetEndpoint(ctx, "demo"); err == nil {
				res.Endpoints = nil // it exists: keep whatever it runs now
			}
			if err := apply(ctx, &cli{out: io.Discard}, srv.Service(), res); err != nil {
				srv.Close()
				return fmt.Errorf("create the demo endpoint: %w", err)
			}
			fmt.Fprintln(c.errOut, "starting the demo endpoint's instances...")
			if err := waitInService(ctx, srv.Service(), "demo", 2*time.Minute); err != nil {
				fmt.Fprintf(c.errOut, "kiln: %v\n", err)
			}
			if cfg.InvokeAuth {
				traffic = 0 // it holds no key to sign with
			}
			url := "http://" + srv.Addr()
			if cfg.TLSCertFile != "" {
				url = "https://" + srv.Addr()
			}
			printDemoHelp(c, url, traffic)
			trafficDone := make(chan struct{})
			go func() {
				defer close(trafficDone)
				sendDemoTraffic(ctx, url, traffic)
			}()
			select {
			case <-ctx.Done():
			case <-srv.Failed():
			}
			err = srv.Close()
			cancel()
			<-trafficDone
			return err
		},
	}
	f.register(cmd, "./kiln-data")
	cmd.Flags().Float64Var(&traffic, "traffic", 10, "invocations a second sent to the demo endpoint; 0 sends none (nor does --invoke-auth)")
	return cmd
}

// sendDemoTraffic invokes the demo endpoint rate times a second until ctx
// ends. Failures are what the metrics and alarms are there to see, so they
// are not reported here.
func sendDemoTraffic(ctx context.Context, url string, rate float64) {
	if rate <= 0 {
		return
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/endpoints/demo/invocations",
			strings.NewReader(`{"instances": [[1, 2, 3, 4]]}`))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		if res, err := client.Do(req); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
}

// waitInService waits until the endpoint is InService with no update
// running, so that the first invocation a user tries succeeds.
func waitInService(ctx context.Context, svc kiln.Service, name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ep, err := svc.GetEndpoint(ctx, name)
		if err != nil {
			return err
		}
		switch {
		case ep.EndpointStatus == kiln.StatusInService && ep.Deployment == nil:
			return nil
		case ep.EndpointStatus == kiln.StatusFailed:
			return fmt.Errorf("endpoint %s failed: %s", name, ep.FailureReason)
		case time.Now().After(deadline):
			return fmt.Errorf("endpoint %s is still %s after %v", name, ep.EndpointStatus, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// demoImage copies the running binary into the data dir, so that the demo
// model's Image names a file that outlives this process (go run deletes
// its binary on exit) and the endpoint comes back after a restart.
func demoImage(dataDir string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the kiln binary: %w", err)
	}
	dir, err := filepath.Abs(filepath.Join(dataDir, "bin"))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", exe, err)
	}
	dst := filepath.Join(dir, "kiln")
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("install %s: %w", dst, err)
	}
	return dst + " demo-model", nil
}

func demoResources(image string) *ApplyFile {
	model := func(name, version string, env map[string]string) kiln.Model {
		e := map[string]string{"KILN_DEMO_VERSION": version}
		for k, v := range env {
			e[k] = v
		}
		return kiln.Model{ModelName: name, PrimaryContainer: &kiln.ContainerDef{Image: image, Environment: e}}
	}
	config := func(name string) kiln.EndpointConfig {
		return kiln.EndpointConfig{EndpointConfigName: name, ProductionVariants: []kiln.ProductionVariant{
			{VariantName: "AllTraffic", ModelName: name, InitialInstanceCount: 2, InstanceType: "ml.m5.large"},
		}}
	}
	return &ApplyFile{
		Models: []kiln.Model{
			model("demo-v1", "v1", nil),
			model("demo-v2", "v2", map[string]string{"KILN_DEMO_LATENCY_MS": "2"}),
			model("demo-bad", "bad", map[string]string{"KILN_DEMO_ERROR_RATE": "1"}),
		},
		EndpointConfigs: []kiln.EndpointConfig{config("demo-v1"), config("demo-v2"), config("demo-bad")},
		Alarms: []kiln.Alarm{{
			AlarmName: "demo-5xx", AlarmDescription: "Any 5xx from the demo endpoint's models",
			Namespace: "AWS/SageMaker", MetricName: "Invocation5XXErrors",
			Dimensions: []kiln.Dimension{{Name: "EndpointName", Value: "demo"}, {Name: "VariantName", Value: "AllTraffic"}},
			Statistic:  "Sum", Period: 1, EvaluationPeriods: 1, Threshold: 0,
			ComparisonOperator: kiln.GreaterThanThreshold, TreatMissingData: kiln.MissingNotBreaching,
		}},
		Endpoints: []ApplyEndpoint{{EndpointName: "demo", EndpointConfigName: "demo-v1"}},
	}
}

func printDemoHelp(c *cli, url string, traffic float64) {
	sending := fmt.Sprintf("invoked %g times a second (--traffic)", traffic)
	if traffic <= 0 {
		sending = "sent no traffic (--traffic 0): the deployments below wait for the requests you send"
	}
	// Every deploy asks for evidence: without traffic (kiln serve on the
	// demo's data dir sends none) a bake would end having seen nothing,
	// and demo-bad would be promoted by an alarm that watched no request.
	evidence := "--min-requests 5 --evidence-timeout 1m"
	fmt.Fprintf(c.out, `
Kiln is running at %[1]s with the endpoint "demo" (2 instances of the demo model),
%[2]s.

Invoke it:
  curl -s %[1]s/endpoints/demo/invocations -H 'Content-Type: application/json' -d '{"instances": [[1, 2, 3, 4]]}'
  %[4]s invoke demo --server %[1]s --body '{"instances": [[1, 2, 3, 4]]}'

Look at it in the dashboard, %[1]s/ui/, or:
  %[4]s describe endpoint demo --server %[1]s
  %[4]s metrics demo --server %[1]s

Deploy a new version with a canary, watched by the alarm demo-5xx. Each bake waits until
the new version answered 5 requests, and the update rolls back if they have not come
1 minute after the bake's end (invoke the endpoint when no traffic is sent):
  %[4]s deploy demo --server %[1]s --config demo-v2 --canary 50%% --bake 30s --alarm demo-5xx %[3]s --watch
Deploy one that fails every request, and watch it roll back on its own:
  %[4]s deploy demo --server %[1]s --config demo-bad --canary 50%% --bake 30s --alarm demo-5xx %[3]s --watch
Go back to the first version:
  %[4]s deploy demo --server %[1]s --config demo-v1 --canary 50%% --bake 30s --alarm demo-5xx %[3]s --watch

Press Ctrl-C to stop Kiln; its instances stop with it and come back with "kiln demo".
`, url, sending, evidence, selfCommand())
}

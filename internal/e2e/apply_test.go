package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-serve/kiln"
)

// `Image: kiln demo-model`, as `kiln apply --help` and the documents write
// it, runs with no kiln on Kiln's PATH; and apply waits for what it
// declares, failing, with the endpoint's name and reason, when an endpoint
// failed or its update did not take.
func TestApplyKilnImageAndFailures(t *testing.T) {
	t.Parallel()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH=/usr/bin:/bin") // no kiln here
	p := startKilnWith(t, "", kilnOpts{env: env})

	good := `models:
  - ModelName: ak-v1
    PrimaryContainer:
      Image: kiln demo-model
  - ModelName: ak-broken
    PrimaryContainer:
      Image: /nonexistent/model-server
endpointConfigs:
  - EndpointConfigName: ak-v1
    ProductionVariants:
      - {VariantName: AllTraffic, ModelName: ak-v1, InitialInstanceCount: 1}
  - EndpointConfigName: ak-broken
    ProductionVariants:
      - {VariantName: AllTraffic, ModelName: ak-broken, InitialInstanceCount: 1}
endpoints:
  - EndpointName: ak
    EndpointConfigName: ak-v1
`
	out := p.mustCLI("apply", "-f", writeTemp(t, good))
	if !strings.Contains(out, "endpoint/ak InService on ak-v1") {
		t.Errorf("apply printed:\n%s\nwant endpoint/ak InService on ak-v1", out)
	}
	if ep := p.endpoint("ak"); ep.EndpointStatus != kiln.StatusInService {
		t.Fatalf("ak is %s after apply: %s", ep.EndpointStatus, ep.FailureReason)
	}
	if r, err := p.invoke("ak", body); err != nil || r.status != 200 || r.version != "v1" {
		t.Fatalf("invoke ak: %v %+v", err, r)
	}

	// An endpoint that cannot start: apply fails, naming it and why.
	created := strings.Replace(good, "EndpointName: ak\n    EndpointConfigName: ak-v1", "EndpointName: ak-new\n    EndpointConfigName: ak-broken", 1)
	_, err := p.cli("apply", "-f", writeTemp(t, created))
	if err == nil || !strings.Contains(err.Error(), "endpoint ak-new is Failed") || !strings.Contains(err.Error(), `cannot run "/nonexistent/model-server"`) {
		t.Errorf("apply of an endpoint that cannot start: %v; want an error naming ak-new, Failed, and the reason", err)
	}

	// An update that does not take: the endpoint stays on ak-v1.
	updated := strings.Replace(good, "EndpointName: ak\n    EndpointConfigName: ak-v1", "EndpointName: ak\n    EndpointConfigName: ak-broken", 1)
	_, err = p.cli("apply", "-f", writeTemp(t, updated))
	if err == nil || !strings.Contains(err.Error(), "endpoint ak is InService on ak-v1, not on ak-broken as declared") || !strings.Contains(err.Error(), "/nonexistent/model-server") {
		t.Errorf("apply of an update that fails: %v; want an error naming ak, its config and the reason", err)
	}

	// --wait=false returns once the change is accepted.
	deleted := strings.Replace(created, "ak-new", "ak-nowait", 1)
	if out, err := p.cli("apply", "-f", writeTemp(t, deleted), "--wait=false"); err != nil || strings.Contains(out, "InService") {
		t.Errorf("apply --wait=false: %v\n%s", err, out)
	}
}

// With an allow-list and no kiln on PATH, "kiln" in an Image and in the
// list is Kiln's own binary: `kiln demo-model` may run, and Kiln itself
// still runs only so.
func TestAllowListKilnWithoutPath(t *testing.T) {
	t.Parallel()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH=/usr/bin:/bin")
	p := startKilnWith(t, "", kilnOpts{env: env}, "--allow-command", "kiln demo-model", "--allow-command", "kiln")
	for i, c := range []struct {
		image  string
		status int
		want   string
	}{
		{"kiln demo-model", 200, ""},
		{kilnBin + " demo-model", 200, ""},
		{"kiln serve --addr 127.0.0.1:0", 400, "is Kiln itself"},
		{"kiln demo", 400, "is Kiln itself"},
	} {
		status, msg := createModelRaw(t, p, "", map[string]any{"ModelName": fmt.Sprintf("al-%d", i), "PrimaryContainer": map[string]any{"Image": c.image}})
		if status == 201 {
			status = 200
		}
		if status != c.status || !strings.Contains(msg, c.want) {
			t.Errorf("CreateModel %q: %d %s; want %d %q", c.image, status, msg, c.status, c.want)
		}
	}
}

// Run as root from a file the instance user cannot reach (go run builds
// Kiln in such a directory), `kiln serve` still runs `kiln demo-model`:
// from the copy it makes in DATA_DIR/bin.
func TestServeKilnImageFromPrivateBinary(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("instances run as another user only when Kiln runs as root")
	}
	private := t.TempDir() // 0700, as go run's build directory
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(kilnBin)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(private, "kiln")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH=/usr/bin:/bin")
	dataDir := filepath.Join(sharedTempDir(t), "data")
	p := startKilnWith(t, dataDir, kilnOpts{env: env, configure: func(cmd *exec.Cmd) { cmd.Path, cmd.Args[0] = bin, bin }})
	out := p.applyYAML(`models:
  - ModelName: pb-v1
    PrimaryContainer:
      Image: kiln demo-model
endpointConfigs:
  - EndpointConfigName: pb-v1
    ProductionVariants:
      - {VariantName: AllTraffic, ModelName: pb-v1, InitialInstanceCount: 1}
endpoints:
  - EndpointName: pb
    EndpointConfigName: pb-v1
`)
	if !strings.Contains(out, "endpoint/pb InService") {
		t.Fatalf("apply printed:\n%s", out)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "bin", "kiln")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the copy in DATA_DIR/bin: %v %v", fi, err)
	}
}

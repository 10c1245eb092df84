package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// sharedTempDir is a temporary directory that any user may enter and
// write to: t.TempDir's parent is not searchable by other users, such as
// the nobody instances run as when the tests run as root.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kiln-e2e-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// createModelRaw posts a model to /v1/models and returns the status and
// the error's message (or the body).
func createModelRaw(t *testing.T, p *kilnProc, token string, model map[string]any) (int, string) {
	t.Helper()
	body, err := json.Marshal(model)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, p.url+"/v1/models", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct{ Message string }
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return resp.StatusCode, e.Message
	}
	return resp.StatusCode, string(b)
}

// An allowed kiln must not become a second Kiln without the allow-list,
// nor an allowed interpreter a way to run any code.
func TestAllowCommandCannotBeBypassed(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("this test needs bash: %v", err)
	}
	// A copy of Kiln under another name: the Go linker's record in it
	// still says what it is.
	renamed := filepath.Join(t.TempDir(), "model-server")
	data, err := os.ReadFile(kilnBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(renamed, data, 0o755); err != nil {
		t.Fatal(err)
	}
	// kiln by name, found in Kiln's PATH, as the demo model needs it.
	path := "PATH=" + filepath.Dir(kilnBin) + string(os.PathListSeparator) + os.Getenv("PATH")
	p := startKilnWith(t, "", kilnOpts{configure: func(cmd *exec.Cmd) { cmd.Env = append(os.Environ(), path) }}, "--allow-command", "kiln", "--allow-command", "bash",
		"--allow-command", renamed, "--allow-command", "bash -c 'echo allowed; exec "+kilnBin+" demo-model'")

	cases := []struct {
		name, image, want string
		env               map[string]string
	}{
		{"kiln serve", "kiln serve --addr 127.0.0.1:0", "is Kiln itself", nil},
		{"kiln serve by path", kilnBin + " serve --addr 127.0.0.1:0", "is Kiln itself", nil},
		{"kiln demo", kilnBin + " demo --addr 127.0.0.1:0", "is Kiln itself", nil},
		{"renamed kiln serve", renamed + " serve --addr 127.0.0.1:0", "is Kiln itself", nil},
		{"bash -c", "bash -c 'id > /tmp/pwned'", `allows bash to run a script file, not "-c"`, nil},
		{"bash stdin", "bash /dev/stdin", `not "/dev/stdin"`, nil},
		{"not listed", "sh -c id", "is not one of the commands this server is allowed to run", nil},
		{"BASH_ENV", kilnBin + " demo-model", "may not set BASH_ENV", map[string]string{"BASH_ENV": "/tmp/x"}},
		{"LD_PRELOAD", kilnBin + " demo-model", "may not set LD_PRELOAD", map[string]string{"LD_PRELOAD": "/tmp/x.so"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			container := map[string]any{"Image": c.image}
			if c.env != nil {
				container["Environment"] = c.env
			}
			status, body := createModelRaw(t, p, "", map[string]any{"ModelName": "m-" + strings.ReplaceAll(strings.ReplaceAll(c.name, " ", "-"), "_", "-"), "PrimaryContainer": container})
			if status != http.StatusBadRequest || !strings.Contains(body, c.want) {
				t.Fatalf("CreateModel %q: %d %s; want 400 containing %q", c.image, status, body, c.want)
			}
			if c.env == nil && !strings.Contains(body, "Image") {
				t.Errorf("the error does not name the Image: %s", body)
			}
		})
	}
	// What the list allows still runs.
	for _, image := range []string{"kiln demo-model", kilnBin + " demo-model", "bash -c 'echo allowed; exec " + kilnBin + " demo-model'"} {
		status, body := createModelRaw(t, p, "", map[string]any{"ModelName": fmt.Sprintf("ok-%d", len(image)), "PrimaryContainer": map[string]any{"Image": image}})
		if status != http.StatusOK && status != http.StatusCreated {
			t.Errorf("CreateModel %q: %d %s; want it created", image, status, body)
		}
	}
}

// A model stored before the allow-list is checked again when its instances
// start: the command does not run.
func TestAllowCommandCheckedAtLaunch(t *testing.T) {
	t.Parallel()
	marks := sharedTempDir(t) // the instance user writes here
	mark := filepath.Join(marks, "ran")
	dataDir := t.TempDir()
	p := startKiln(t, dataDir)
	ctx := context.Background()
	image := fmt.Sprintf(`bash -c 'echo ran >> %s; exec %s demo-model'`, mark, kilnBin)
	if _, err := p.client.CreateModel(ctx, &kiln.Model{ModelName: "late", PrimaryContainer: &kiln.ContainerDef{Image: image}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client.CreateEndpointConfig(ctx, &kiln.EndpointConfig{EndpointConfigName: "late", ProductionVariants: []kiln.ProductionVariant{
		{VariantName: "AllTraffic", ModelName: "late", InitialInstanceCount: 1, InstanceType: "ml.m5.large"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: "late", EndpointConfigName: "late"}); err != nil {
		t.Fatal(err)
	}
	p.waitInService("late", time.Minute)
	if _, err := os.Stat(mark); err != nil {
		t.Fatalf("without a list the command should have run: %v", err)
	}
	p.stop()
	if err := os.Remove(mark); err != nil {
		t.Fatal(err)
	}

	p = startKiln(t, dataDir, "--allow-command", "bash")
	var note string
	waitFor(t, 30*time.Second, "a launch refused in the instance log", func() bool {
		logs, _ := filepath.Glob(filepath.Join(dataDir, "logs", "late", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			if i := strings.Index(string(b), "could not start:"); i >= 0 && strings.Contains(string(b[i:]), `not "-c"`) {
				note = string(b[i:])
				return true
			}
		}
		return false
	})
	if _, err := os.Stat(mark); err == nil {
		t.Errorf("the refused command ran anyway (%s exists); note: %s", mark, note)
	}
}

// spyScript is a model that reports what it can see of Kiln's secrets:
// Kiln's environment through /proc, and its own; then it serves as the
// demo model, so that the endpoint's InService says the report is written.
const spyScript = `#!/bin/sh
{
  echo "uid=$(id -u)"
  if tr '\0' '\n' < /proc/$PPID/environ; then echo "kiln-environ=read"; else echo "kiln-environ=refused"; fi
  echo "own-environment:"
  env
} > "$SPY_OUT/report.tmp" 2>&1
mv "$SPY_OUT/report.tmp" "$SPY_OUT/report"
exec "$KILN_BIN" demo-model
`

// No model can read the secret Kiln was started with: not in its own
// environment, not in Kiln's through /proc. Kiln runs as root here with
// instances as nobody (the default), and as an unprivileged user whose
// instances share its user, which only Kiln's non-dumpable flag protects.
func TestInstanceCannotReadKilnSecret(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Log("not root: Kiln and its instances run as the test's user")
	}
	for _, asNobody := range []bool{false, true} {
		name := "kiln as the test user"
		if asNobody {
			name = "kiln as nobody"
		}
		t.Run(name, func(t *testing.T) {
			if asNobody && os.Geteuid() != 0 {
				t.Skip("only root can start Kiln as another user; the other case is this one")
			}
			const secret = "s3cr3t-canary-0123456789abcdefghij"
			dir := sharedTempDir(t)
			script := filepath.Join(dir, "spy.sh")
			if err := os.WriteFile(script, []byte(spyScript), 0o755); err != nil {
				t.Fatal(err)
			}
			dataDir := filepath.Join(dir, "data")
			if err := os.Mkdir(dataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			var cred *syscall.Credential
			if asNobody {
				u, err := user.Lookup("nobody")
				if err != nil {
					t.Fatal(err)
				}
				uid, _ := strconv.Atoi(u.Uid)
				gid, _ := strconv.Atoi(u.Gid)
				cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
				if err := os.Chown(dataDir, uid, gid); err != nil {
					t.Fatal(err)
				}
			}
			p := startKilnWith(t, dataDir, kilnOpts{configure: func(cmd *exec.Cmd) {
				cmd.Env = append(os.Environ(), "KILN_ACCESS_KEY_ID=AKIDSPYTEST", "KILN_SECRET_ACCESS_KEY="+secret, "KILN_TOKEN="+secret)
				if cred != nil {
					cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
				}
			}})
			p.client.AccessKeyID, p.client.SecretAccessKey = "AKIDSPYTEST", secret
			ctx := context.Background()
			if _, err := p.client.CreateModel(ctx, &kiln.Model{ModelName: "spy", PrimaryContainer: &kiln.ContainerDef{
				Image: "sh " + script, Environment: map[string]string{"SPY_OUT": dir, "KILN_BIN": kilnBin}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.client.CreateEndpointConfig(ctx, &kiln.EndpointConfig{EndpointConfigName: "spy", ProductionVariants: []kiln.ProductionVariant{
				{VariantName: "AllTraffic", ModelName: "spy", InitialInstanceCount: 1, InstanceType: "ml.m5.large"}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.client.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: "spy", EndpointConfigName: "spy"}); err != nil {
				t.Fatal(err)
			}
			p.waitInService("spy", time.Minute)
			report, err := os.ReadFile(filepath.Join(dir, "report"))
			if err != nil {
				t.Fatal(err)
			}
			r := string(report)
			t.Logf("the model's report:\n%s", r)
			if !strings.Contains(r, "SAGEMAKER_BIND_TO_PORT=") || !strings.Contains(r, "kiln-environ=") {
				t.Fatalf("the report is not what the script writes:\n%s", r)
			}
			if strings.Contains(r, secret) {
				t.Errorf("the model read Kiln's secret")
			}
			if !strings.Contains(r, "kiln-environ=refused") {
				t.Errorf("the model could read Kiln's /proc/<pid>/environ")
			}
			if os.Geteuid() == 0 && strings.Contains(r, "uid=0\n") {
				t.Errorf("the model runs as root")
			}
			// Kiln's own /proc files are root's now; its metrics still work.
			resp, err := http.Get(p.url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET /metrics: %s", resp.Status)
			}
			// Logs are Kiln's alone.
			fi, err := os.Stat(filepath.Join(dataDir, "logs"))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("the logs directory is mode %s, want no access for others", fi.Mode().Perm())
			}
		})
	}
}

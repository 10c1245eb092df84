package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api/client"
)

// The documents whose marked code blocks are walk-throughs: a line
// `<!-- walkthrough: NAME -->` right before a fenced block.
var walkthroughDocs = []string{"README.md", "docs/aws.md", "docs/models.md"}

var walkthroughMark = regexp.MustCompile(`^<!-- walkthrough: ([a-z0-9-]+) -->$`)

// docBlock is one marked code block.
type docBlock struct {
	name, lang, code, file string
}

// readWalkthroughs returns the marked blocks of the documents under root.
func readWalkthroughs(t *testing.T, root string) map[string]docBlock {
	t.Helper()
	blocks := map[string]docBlock{}
	for _, doc := range walkthroughDocs {
		data, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i := 0; i < len(lines); i++ {
			m := walkthroughMark.FindStringSubmatch(lines[i])
			if m == nil {
				continue
			}
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
				t.Fatalf("%s:%d: the walk-through mark %q is not right before a code block", doc, i+1, m[1])
			}
			b := docBlock{name: m[1], lang: strings.TrimPrefix(lines[i+1], "```"), file: doc}
			end := slices.Index(lines[i+2:], "```")
			if end < 0 {
				t.Fatalf("%s:%d: the code block of %q does not end", doc, i+2, m[1])
			}
			b.code = strings.Join(lines[i+2:i+2+end], "\n") + "\n"
			if _, dup := blocks[b.name]; dup {
				t.Fatalf("%s:%d: a second walk-through named %q", doc, i+1, b.name)
			}
			blocks[b.name] = b
		}
	}
	return blocks
}

// walkthrough says how one marked block runs and what it must show.
type walkthrough struct {
	name string
	// inRepo runs the block in the repository's directory (it says
	// `go run ./cmd/kiln`); otherwise in a directory of its own.
	inRepo bool
	// mayFail accepts a non-zero exit: the block ends on a deployment that
	// rolls back, which `kiln deploy --watch` may report so; check then
	// says whether it did what the document promises.
	mayFail bool
	// demo says the walk-through uses the quick start's endpoint: those run
	// one at a time (an invocation during the failing canary fails), the
	// others alongside them.
	demo bool
	// want must appear in the block's output.
	want string
	// check, if set, looks at Kiln after the block ran.
	check func(k *quickStart) error
}

// Every walk-through of the documents runs as written, twice in a row,
// after the quick start: against `go run ./cmd/kiln demo` on its own data
// dir, with no kiln on anyone's PATH, with the real boto3, the AWS CLI and
// the AWS SDK for Go. Only the address changes, to a free port.
func TestDocWalkthroughs(t *testing.T) {
	requirePython(t, "boto3")
	if _, err := os.Stat(awsCLI); err != nil {
		if os.Getenv("KILN_REQUIRE_SERVERS") == "1" {
			t.Fatalf("%s is missing (install the Debian package awscli): %v", awsCLI, err)
		}
		t.Skipf("%s is missing (install the Debian package awscli)", awsCLI)
	}
	for _, tool := range []string{"bash", "curl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s: %v", tool, err)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readWalkthroughs(t, root)
	walks := []walkthrough{
		{name: "readme-quickstart", demo: true, inRepo: true, mayFail: true, want: `"predictions"`, check: func(k *quickStart) error {
			ep, err := k.kiln.client.GetEndpoint(context.Background(), "demo")
			if err != nil {
				return err
			}
			if ep.EndpointStatus != kiln.StatusInService || ep.EndpointConfigName != "demo-v1" || !strings.Contains(ep.FailureReason, "demo-5xx") {
				return fmt.Errorf("after the README's failing canary, demo is %s on %s with FailureReason %q; want InService on demo-v1, with a reason naming demo-5xx",
					ep.EndpointStatus, ep.EndpointConfigName, ep.FailureReason)
			}
			return nil
		}},
		{name: "readme-boto3", demo: true, want: `"predictions"`},
		{name: "readme-aws-cli", demo: true, want: `"EndpointName": "demo"`},
		{name: "aws-boto3", want: "the model answered 400"},
		{name: "aws-cli", want: `"model_version":"v1"`},
		{name: "aws-go", want: "AllTraffic"},
		{name: "models-apply", inRepo: true, want: `"predictions"`, check: func(k *quickStart) error {
			ep, err := k.kiln.client.GetEndpoint(context.Background(), "hello")
			if err != nil {
				return err
			}
			if ep.EndpointStatus != kiln.StatusInService {
				return fmt.Errorf("hello is %s (%s) after models.md's apply", ep.EndpointStatus, ep.FailureReason)
			}
			return nil
		}},
	}
	for name, b := range blocks {
		if name != "quickstart" && !slices.ContainsFunc(walks, func(w walkthrough) bool { return w.name == name }) {
			t.Errorf("%s marks the walk-through %q, which this test does not run", b.file, name)
		}
	}

	for _, w := range walks {
		if _, ok := blocks[w.name]; !ok {
			t.Fatalf("no walk-through %q in %s", w.name, strings.Join(walkthroughDocs, ", "))
		}
	}

	k := startQuickStart(t, root, blocks)
	// Each walk-through runs twice in a row; those on names of their own
	// at the same time as the others.
	run := func(w walkthrough, round int) {
		b := blocks[w.name]
		out, err := k.run(t, b, w.inRepo)
		if err != nil && !w.mayFail {
			t.Errorf("round %d: %s's walk-through %q failed: %v\n%s", round, b.file, w.name, err, out)
			return
		}
		if !strings.Contains(out, w.want) {
			t.Errorf("round %d: %s's walk-through %q printed no %s (exit: %v):\n%s", round, b.file, w.name, w.want, err, out)
		}
		if w.check != nil {
			if err := w.check(k); err != nil {
				t.Errorf("round %d: %s's walk-through %q: %v", round, b.file, w.name, err)
			}
		}
	}
	var wg sync.WaitGroup
	var demo []walkthrough
	for _, w := range walks {
		if w.demo {
			demo = append(demo, w)
			continue
		}
		wg.Go(func() {
			for round := 1; round <= 2; round++ {
				run(w, round)
			}
		})
	}
	wg.Go(func() {
		for round := 1; round <= 2; round++ {
			for _, w := range demo {
				run(w, round)
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	// `kiln apply --help`'s example, as a user copies it, twice. It
	// declares what models.md's walk-through does, so it runs after it.
	for round := 1; round <= 2; round++ {
		out, err := k.applyHelpExample(t)
		if err != nil || !strings.Contains(out, "endpoint/hello InService") {
			t.Fatalf("round %d: kiln apply --help's example: %v\n%s", round, err, out)
		}
	}

	// What the walk-throughs created, they deleted: only the demo's
	// resources and hello (which apply declares) are left.
	ctx := context.Background()
	models, err := k.kiln.client.ListModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range models {
		names = append(names, m.ModelName)
	}
	slices.Sort(names)
	if want := []string{"demo-bad", "demo-v1", "demo-v2", "hello-v1"}; !slices.Equal(names, want) {
		t.Errorf("models left after the walk-throughs: %v, want %v", names, want)
	}
}

// quickStart is `go run ./cmd/kiln demo` as the README starts it.
type quickStart struct {
	kiln    *kilnProc // for its client; the process is the group below
	root    string
	scratch string // where each run of a walk-through gets a directory
	env     []string
	addr    string
}

// startQuickStart runs the README's quick start block, as written, in the
// repository's directory, with Kiln's address and data dir from the
// environment (KILN_ADDR, KILN_DATA_DIR), and waits for the demo endpoint.
func startQuickStart(t *testing.T, root string, blocks map[string]docBlock) *quickStart {
	t.Helper()
	b, ok := blocks["quickstart"]
	if !ok || !strings.Contains(b.code, "go run ./cmd/kiln demo") {
		t.Fatalf("no quick start block (walkthrough: quickstart) that runs go run ./cmd/kiln demo: %+v", b)
	}
	// The tools the documents name, found where a user has them, and
	// nothing else: no kiln.
	tools := sharedTempDir(t)
	python, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatal(err)
	}
	goEnv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	ge := strings.Fields(string(goEnv))
	// The go of the toolchain that runs this test, even when it is one
	// that go.mod's go line made the local go switch to.
	goBin := filepath.Join(ge[3], "bin", "go")
	for name, target := range map[string]string{"python3": strings.TrimSpace(string(python)), "aws": awsCLI, "go": goBin} {
		if err := os.Symlink(target, filepath.Join(tools, name)); err != nil {
			t.Fatal(err)
		}
	}
	path := tools + ":/usr/bin:/bin"
	for _, dir := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(dir, "kiln")); err == nil {
			t.Fatalf("%s has a kiln: the walk-throughs must run without one on PATH", dir)
		}
	}
	home := t.TempDir()
	addr := freeAddr(t)
	k := &quickStart{root: root, addr: addr, scratch: sharedTempDir(t), env: []string{
		"PATH=" + path, "HOME=" + home, "LANG=C.UTF-8",
		"GOCACHE=" + ge[0], "GOMODCACHE=" + ge[1], "GOPATH=" + ge[2], "GOROOT=" + ge[3],
		"GOPROXY=off", "GOTOOLCHAIN=local", "GOFLAGS=",
		"KILN_ADDR=" + addr, "KILN_DATA_DIR=" + filepath.Join(sharedTempDir(t), "kiln-data"),
		"KILN_SERVER=http://" + addr,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "aws-credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
	}}

	cmd := exec.Command("bash", "-c", b.code)
	cmd.Dir, cmd.Env = root, k.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// Ctrl-C, as the quick start stops: to the whole group (go run
		// and the Kiln it started).
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(45 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("go run ./cmd/kiln demo:\n%s", tail(logs.String(), 8000))
		}
	})
	k.kiln = &kilnProc{t: t, addr: addr, url: "http://" + addr, done: done, logs: logs}
	k.kiln.client = &client.Client{BaseURL: k.kiln.url, HTTP: &http.Client{Timeout: 30 * time.Second}}
	// go run may have to link Kiln first.
	deadline := time.Now().Add(4 * time.Minute)
	for {
		ep, err := k.kiln.client.GetEndpoint(context.Background(), "demo")
		if err == nil && ep.EndpointStatus == kiln.StatusInService && ep.Deployment == nil {
			break
		}
		select {
		case <-done:
			t.Fatalf("the quick start ended:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the quick start's demo endpoint is not in service after 4 minutes:\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return k
}

// run runs one block with the quick start's address in place of the
// documents' 127.0.0.1:8080, and returns its output.
func (k *quickStart) run(t *testing.T, b docBlock, inRepo bool) (string, error) {
	code := strings.NewReplacer("127.0.0.1:8080", k.addr, "localhost:8080", k.addr).Replace(b.code)
	dir, err := os.MkdirTemp(k.scratch, b.name+"-")
	if err != nil {
		return "", err
	}
	var cmd *exec.Cmd
	switch b.lang {
	case "sh":
		cmd = exec.Command("bash", "-e", "-c", code)
	case "python":
		cmd = exec.Command("python3", "-c", code)
	case "go":
		// A module of its own with the project's requirements, which hold
		// the SDK's modules the example imports.
		for _, f := range []string{"go.mod", "go.sum"} {
			data, err := os.ReadFile(filepath.Join(k.root, f))
			if err != nil {
				return "", err
			}
			if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
				return "", err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(code), 0o644); err != nil {
			return "", err
		}
		cmd = exec.Command("go", "run", ".")
	default:
		return "", fmt.Errorf("%s: walk-through %q is a %q block, which this test cannot run", b.file, b.name, b.lang)
	}
	cmd.Dir, cmd.Env = dir, k.env
	if inRepo {
		cmd.Dir = k.root
	}
	// The tools are looked up in the walk-through's PATH, not the test's.
	if cmd.Path, err = lookIn(k.env, cmd.Args[0]); err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = runWithin(cmd, 3*time.Minute)
	t.Logf("%s (%s): %v, %v", b.name, b.file, err, time.Since(start).Round(100*time.Millisecond))
	return out.String(), err
}

// applyHelpExample applies the file `kiln apply --help` shows, with the
// command it shows.
func (k *quickStart) applyHelpExample(t *testing.T) (string, error) {
	t.Helper()
	help, err := exec.Command(kilnBin, "apply", "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	var command, file string
	var yaml []string
	sc := bufio.NewScanner(bytes.NewReader(help))
	in := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "  kiln apply -f "):
			command = strings.TrimPrefix(line, "  ")
		case strings.HasPrefix(line, "  # ") && strings.HasSuffix(line, ".yaml"):
			file, in = strings.TrimPrefix(line, "  # "), true
		case in && strings.HasPrefix(line, "  "):
			yaml = append(yaml, strings.TrimPrefix(line, "  "))
		case in:
			in = false
		}
	}
	if command == "" || file == "" || len(yaml) == 0 || command != "kiln apply -f "+file {
		t.Fatalf("kiln apply --help shows no example file and the command that applies it:\n%s", help)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(strings.Join(yaml, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kilnBin, strings.Fields(command)[1:]...)
	cmd.Dir, cmd.Env = dir, k.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lookIn finds name in env's PATH.
func lookIn(env []string, name string) (string, error) {
	for _, kv := range env {
		if path, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, dir := range filepath.SplitList(path) {
				p := filepath.Join(dir, name)
				if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
					return p, nil
				}
			}
		}
	}
	return "", fmt.Errorf("%s is not in the walk-throughs' PATH", name)
}

// runWithin runs cmd, killed after limit.
func runWithin(cmd *exec.Cmd, limit time.Duration) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("still running after %v", limit)
	}
}

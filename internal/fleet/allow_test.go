package fleet

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-serve/kiln"
)

func TestCommandPolicy(t *testing.T) {
	dir := t.TempDir()
	// A file named kiln is Kiln's binary as far as the policy can tell.
	fakeKiln := filepath.Join(dir, "kiln")
	script := filepath.Join(dir, "serve.sh")
	server := filepath.Join(dir, "model-server")
	for _, f := range []string{fakeKiln, script, server} {
		if err := os.WriteFile(f, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []string{"sh", "bash", "env", "perl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s: %v", tool, err)
		}
	}
	cases := []struct {
		name  string
		allow []string
		image string
		want  string // "" for allowed, else a part of the error
	}{
		{"no list: anything", nil, "bash -c 'echo hi'", ""},
		{"no list: kiln demo-model", nil, fakeKiln + " demo-model", ""},
		{"no list: kiln serve", nil, fakeKiln + " serve --addr 127.0.0.1:0", "is Kiln itself"},
		{"kiln serve with kiln allowed", []string{fakeKiln}, fakeKiln + " serve --addr 127.0.0.1:0", "is Kiln itself"},
		{"kiln serve with a pattern allowing it", []string{fakeKiln + " **"}, fakeKiln + " serve", "is Kiln itself"},
		{"kiln demo with kiln allowed", []string{fakeKiln}, fakeKiln + " demo", "is Kiln itself"},
		{"kiln demo-model with a flag", []string{fakeKiln}, fakeKiln + " demo-model --help", "is Kiln itself"},
		{"kiln demo-model with kiln allowed", []string{fakeKiln}, fakeKiln + " demo-model", ""},
		{"exact command line", []string{fakeKiln + " demo-model"}, fakeKiln + " demo-model", ""},
		{"executable: any arguments", []string{server}, server + " --port 1 --anything", ""},
		{"not listed", []string{server}, "sh " + script, "is not one of the commands"},
		{"pattern matches", []string{server + " --port *"}, server + " --port 8080", ""},
		{"pattern: too many arguments", []string{server + " --port *"}, server + " --port 8080 --debug", "wants 2 arguments, not 3"},
		{"pattern: too few arguments", []string{server + " --port *"}, server + " --port", "wants 2 arguments, not 1"},
		{"pattern: wrong literal", []string{server + " --port *"}, server + " --host x", `does not match argument 1 ("--host")`},
		{"pattern: star does not cross slashes", []string{server + " /opt/models/*"}, server + " /opt/models/a/b", "does not match argument 1"},
		{"pattern: dot-dot", []string{server + " /opt/models/*"}, server + " /opt/models/..", `"..`},
		{"pattern: rest", []string{server + " --port * **"}, server + " --port 1 a b c", ""},
		{"pattern: rest may be empty", []string{server + " **"}, server, ""},
		{"bash script", []string{"bash"}, "bash " + script + " --port 1", ""},
		{"bash -c refused", []string{"bash"}, "bash -c 'echo pwned'", `allows bash to run a script file, not "-c"`},
		{"bash -xc refused", []string{"bash"}, "bash -xc 'echo pwned'", `not "-xc"`},
		{"bash option before script", []string{"bash"}, "bash --rcfile /etc/passwd -i", `not "--rcfile"`},
		{"bash stdin", []string{"bash"}, "bash -", `not "-"`},
		{"bash environ as script", []string{"bash"}, "bash /proc/self/environ", `not "/proc/self/environ"`},
		{"bash /dev/stdin", []string{"bash"}, "bash /dev/stdin", `not "/dev/stdin"`},
		{"sh -c refused", []string{"sh"}, "sh -c id", `not "-c"`},
		{"bash -c with a pattern spelling -c", []string{"bash -c *"}, "bash -c 'echo allowed'", ""},
		{"bash -c with a pattern of wildcards", []string{"bash * *"}, "bash -c 'echo pwned'", "only with a word without wildcards"},
		{"bash -c with a rest pattern", []string{"bash **"}, "bash -c 'echo pwned'", "only with a word without wildcards"},
		{"bash script with a rest pattern", []string{"bash " + script + " **"}, "bash " + script + " -c x", ""},
		{"perl -e refused", []string{"perl"}, "perl -e 'print 1'", `not "-e"`},
		{"perl -M refused", []string{"perl"}, "perl -MPOSIX " + script, `not "-MPOSIX"`},
		{"env by name refused", []string{"env"}, "env " + server, "runs other commands"},
		{"env with a pattern", []string{"env FOO=1 " + server}, "env FOO=1 " + server, ""},
		{"env running kiln serve", []string{"env *"}, "env " + fakeKiln + " serve", "would run Kiln itself"},
		{"bad split", []string{server}, server + " 'unclosed", "cannot be split"},
		{"not found with a list", []string{server}, "no-such-command-xyz", "cannot be found"},
		{"not found without a list", nil, "no-such-command-xyz", ""},
	}
	if _, err := exec.LookPath("python3"); err == nil {
		cases = append(cases, []struct {
			name  string
			allow []string
			image string
			want  string
		}{
			{"python script", []string{"python3"}, "python3 -u " + script, ""},
			{"python -c refused", []string{"python3"}, "python3 -c 'import os'", `not "-c"`},
			{"python -uc refused", []string{"python3"}, "python3 -uc 'import os'", `not "-uc"`},
			{"python -m refused", []string{"python3"}, "python3 -m pip install x", `not "-m"`},
			{"python -m with a pattern", []string{"python3 -m uvicorn **"}, "python3 -m uvicorn app:app --port 1", ""},
		}...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseCommandPolicy(c.allow)
			if err != nil {
				t.Fatal(err)
			}
			err = p.CheckImage(c.image)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("CheckImage(%q) with %q: %v, want nil", c.image, c.allow, err)
			case c.want != "" && err == nil:
				t.Fatalf("CheckImage(%q) with %q: nil, want an error containing %q", c.image, c.allow, c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("CheckImage(%q) with %q: %v, want it to contain %q", c.image, c.allow, err, c.want)
			case err != nil && kiln.ErrorCode(err) != kiln.EINVALID:
				t.Fatalf("CheckImage(%q): code %q, want %q", c.image, kiln.ErrorCode(err), kiln.EINVALID)
			case err != nil && !strings.Contains(err.Error(), "Image"):
				t.Fatalf("CheckImage(%q): %v does not name the Image", c.image, err)
			}
		})
	}
}

func TestParseCommandPolicyErrors(t *testing.T) {
	for _, entry := range []string{"", "'unclosed", "srv [a-"} {
		if _, err := ParseCommandPolicy([]string{entry}); err == nil {
			t.Errorf("ParseCommandPolicy(%q) = nil error", entry)
		}
	}
}

// The bare word kiln names the policy's own binary, in an Image and in an
// entry, whatever PATH holds; Kiln itself still runs only as demo-model.
func TestKilnWordIsSelf(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no kiln anywhere
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, allow := range [][]string{nil, {"kiln demo-model"}, {"kiln"}} {
		p, err := ParseCommandPolicy(allow)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.CheckImage("kiln demo-model"); err == nil && len(allow) > 0 {
			t.Errorf("allow %q without a self: kiln demo-model passed, though no kiln can be found", allow)
		}
		p.self = self
		if exe, err := p.lookPath("kiln"); err != nil || exe != self {
			t.Errorf("lookPath(kiln) = %q, %v; want %q", exe, err, self)
		}
		if err := p.CheckImage("kiln demo-model"); err != nil {
			t.Errorf("allow %q: kiln demo-model: %v", allow, err)
		}
		if err := p.CheckImage("kiln serve"); err == nil || !strings.Contains(err.Error(), "is Kiln itself") {
			t.Errorf("allow %q: kiln serve: %v; want refused as Kiln itself", allow, err)
		}
	}
}

package fleet

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

func TestUserCanExecute(t *testing.T) {
	if _, err := user.Lookup("nobody"); err != nil {
		t.Fatalf("this test needs the user nobody: %v", err)
	}
	open, err := os.MkdirTemp("", "kiln-fleet-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	closed := filepath.Join(open, "closed")
	for dir, mode := range map[string]os.FileMode{open: 0o755, closed: 0o700} {
		if err := os.MkdirAll(dir, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path string, mode os.FileMode, content string) string {
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, c := range []struct {
		name, path, want string
	}{
		{"reachable binary", write(filepath.Join(open, "bin"), 0o755, "\x7fELF"), ""},
		{"behind a closed directory", write(filepath.Join(closed, "bin"), 0o755, "\x7fELF"), "may not enter the directory " + closed},
		{"not executable by others", write(filepath.Join(open, "private"), 0o700, "\x7fELF"), "may not execute"},
		{"unreadable script", write(filepath.Join(open, "script"), 0o711, "#!/bin/sh\n"), "may not read the script"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := UserCanExecute("nobody", c.path)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("UserCanExecute(nobody, %s) = %v, want nil", c.path, err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("UserCanExecute(nobody, %s) = %v, want an error containing %q", c.path, err, c.want)
			}
		})
	}
}

func TestLookupInstanceUser(t *testing.T) {
	if u, err := lookupInstanceUser(""); u != nil || err != nil {
		t.Errorf(`lookupInstanceUser("") = %v, %v; want nil, nil`, u, err)
	}
	if _, err := lookupInstanceUser("no-such-user-kiln"); err == nil || !strings.Contains(err.Error(), "no-such-user-kiln") {
		t.Errorf("an unknown user: %v, want an error naming it", err)
	}
	self, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if u, err := lookupInstanceUser(self.Username); u != nil || err != nil {
		t.Errorf("Kiln's own user: %v, %v; want nil, nil (nothing to switch)", u, err)
	}
	u, err := lookupInstanceUser("54321:54322")
	switch {
	case os.Geteuid() != 0:
		if err == nil || !strings.Contains(err.Error(), "not root") {
			t.Errorf("another user while not root: %v, want an error saying Kiln is not root", err)
		}
	case err != nil:
		t.Errorf("a numeric user the system does not know: %v", err)
	case u.uid != 54321 || u.gid != 54322 || len(u.groups) != 1 || u.groups[0] != 54322:
		t.Errorf("54321:54322 = %+v", u)
	}
}

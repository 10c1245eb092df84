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

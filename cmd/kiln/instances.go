package main

import (
	"fmt"
	"io"
	"os"
	"os/user"

	"github.com/kiln-serve/kiln/internal/fleet"
)

// defaultInstanceUser is who instances run as when Kiln runs as root and
// --instance-user is not given: an account that owns no file, so that an
// instance can read and run only what every user may.
const defaultInstanceUser = "nobody"

// nobodyID is nobody's customary uid and gid, for systems that do not
// name it.
const nobodyID = "65534:65534"

// instanceUser is --instance-user, or its default: nobody when Kiln runs
// as root, Kiln's own user otherwise. auto reports the default.
func (f *serveFlags) instanceUserName() (name string, auto bool) {
	if f.instanceUser != "" {
		return f.instanceUser, false
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup(defaultInstanceUser); err != nil {
			return nobodyID, true // a system without a user database (a bare container image)
		}
		return defaultInstanceUser, true
	}
	return "", true
}

// demoInstanceUser is who the demo's instances run as: the default user
// cannot run the demo model when it cannot reach the copy of Kiln the demo
// made (a data dir under a home directory only root may enter); then the
// demo runs them as Kiln's own user and says so, rather than not start.
// A user given with --instance-user is kept, and the error is Kiln's.
func demoInstanceUser(name string, auto bool, exe string, warn io.Writer) string {
	if name == "" {
		return ""
	}
	err := fleet.UserCanExecute(name, exe)
	if err == nil || !auto {
		return name
	}
	fmt.Fprintf(warn, "kiln: warning: the demo's instances run as Kiln's own user, not %s: %v (give --data-dir a directory %s can reach, or --instance-user)\n", name, err, name)
	return ""
}

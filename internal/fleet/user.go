package fleet

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// instanceUser is who instances run as when Kiln, running as root, is told
// to run them as someone else.
type instanceUser struct {
	name     string
	uid, gid uint32
	groups   []uint32
	home     string
}

// lookupInstanceUser finds the user named by name (or numeric ID); nil for
// "", which means Kiln's own user.
func lookupInstanceUser(name string) (*instanceUser, error) {
	if name == "" {
		return nil, nil
	}
	iu, err := resolveUser(name)
	if err != nil {
		return nil, fmt.Errorf("instance %w", err)
	}
	if iu.uid == uint32(os.Geteuid()) {
		return nil, nil // Kiln's own user: nothing to switch
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("instance user %q: Kiln runs as uid %d, not root, so it cannot start processes as another user", name, os.Geteuid())
	}
	return iu, nil
}

// resolveUser finds a user by name, by numeric ID, or takes UID[:GID] as
// given when the system's user database does not know it.
func resolveUser(name string) (*instanceUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var err2 error
		if u, err2 = user.LookupId(name); err2 != nil {
			if iu := numericUser(name); iu != nil {
				return iu, nil
			}
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
	}
	return toInstanceUser(u)
}

// numericUser is a user given as UID or UID:GID that the system's user
// database does not know (a container image without /etc/passwd); nil if
// name is not numeric.
func numericUser(name string) *instanceUser {
	uidText, gidText, hasGID := strings.Cut(name, ":")
	uid, err := strconv.ParseUint(uidText, 10, 32)
	if err != nil {
		return nil
	}
	gid := uid
	if hasGID {
		if gid, err = strconv.ParseUint(gidText, 10, 32); err != nil {
			return nil
		}
	}
	return &instanceUser{name: name, uid: uint32(uid), gid: uint32(gid), groups: []uint32{uint32(gid)}, home: "/"}
}

func toInstanceUser(u *user.User) (*instanceUser, error) {
	name := u.Username
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("instance user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("instance user %q: gid %q: %w", name, u.Gid, err)
	}
	iu := &instanceUser{name: u.Username, uid: uint32(uid), gid: uint32(gid), home: u.HomeDir}
	ids, err := u.GroupIds()
	if err != nil {
		ids = []string{u.Gid} // no group database to ask: the primary group only
	}
	for _, id := range ids {
		g, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("instance user %q: group %q: %w", name, id, err)
		}
		iu.groups = append(iu.groups, uint32(g))
	}
	return iu, nil
}

// credential is what SysProcAttr needs to start a process as the user.
func (u *instanceUser) credential() *syscall.Credential {
	if u == nil {
		return nil
	}
	return &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: u.groups}
}

// privateDir creates dir if needed and makes it readable by its owner only,
// also when an earlier version created it readable by all.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// UserCanExecute reports why the user named name (or numeric ID) could not
// run the executable file path: a directory on the way it may not search,
// or the file itself it may not execute (or, for a script, read). It
// answers from the permission bits, as the kernel would decide for a
// process of that user without capabilities; ACLs are not read.
func UserCanExecute(name, path string) error {
	iu, err := resolveUser(name)
	if err != nil {
		return err
	}
	return iu.canExecute(path)
}

func (u *instanceUser) canExecute(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return err
	}
	dir := "/"
	for _, part := range strings.Split(strings.TrimPrefix(filepath.Dir(real), "/"), "/") {
		dir = filepath.Join(dir, part)
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if !u.may(fi, 1) {
			return fmt.Errorf("user %s may not enter the directory %s (mode %s), on the way to %s", u.name, dir, fi.Mode().Perm(), path)
		}
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	if !u.may(fi, 1) {
		return fmt.Errorf("user %s may not execute %s (mode %s)", u.name, real, fi.Mode().Perm())
	}
	if f, err := os.Open(real); err == nil {
		head := make([]byte, 2)
		n, _ := f.Read(head)
		f.Close()
		if n == 2 && string(head) == "#!" && !u.may(fi, 4) {
			return fmt.Errorf("user %s may not read the script %s (mode %s)", u.name, real, fi.Mode().Perm())
		}
	}
	return nil
}

// may reports whether the user has the permission bit (4 read, 2 write,
// 1 execute or search) on a file.
func (u *instanceUser) may(fi os.FileInfo, bit os.FileMode) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true // cannot tell: let the kernel decide
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == u.uid:
		return perm&(bit<<6) != 0
	case st.Gid == u.gid || slices.Contains(u.groups, st.Gid):
		return perm&(bit<<3) != 0
	}
	return perm&bit != 0
}

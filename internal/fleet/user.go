package fleet

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
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
	u, err := user.Lookup(name)
	if err != nil {
		var err2 error
		if u, err2 = user.LookupId(name); err2 != nil {
			return nil, fmt.Errorf("instance user %q: %w", name, err)
		}
	}
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
	if iu.uid == uint32(os.Geteuid()) {
		return nil, nil // Kiln's own user: nothing to switch
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("instance user %q: Kiln runs as uid %d, not root, so it cannot start processes as another user", name, os.Geteuid())
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

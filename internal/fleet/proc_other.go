//go:build unix && !linux

package fleet

import "syscall"

// sysProcAttr puts an instance in its own process group. Only Linux can
// have the kernel kill it when Kiln dies (Pdeathsig).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// waitExited cannot wait without reaping here; the caller reaps.
func waitExited(int) bool { return false }

// exitedNow cannot tell here; the caller learns of the exit from Wait.
func exitedNow(int) bool { return false }

// processesWithToken cannot read other processes' environments here, so
// leftovers of an earlier run are not recognised and are left alone.
func processesWithToken(map[string]bool) map[int]string { return nil }

package fleet

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// sysProcAttr puts an instance in its own process group, so that stopping
// it stops everything it started and a Ctrl-C meant for Kiln does not reach
// it, and has the kernel kill it if the thread that started it (Kiln's
// spawner thread) dies, so that a Kiln killed with SIGKILL leaves no orphan.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// waitExited blocks until the child pid has exited, without reaping it,
// and reports whether it could (waitid with WNOWAIT, as the os package
// itself does before it reaps).
func waitExited(pid int) bool {
	const (
		pPID    = 1
		wNOWAIT = 0x1000000
	)
	var siginfo [16]uint64
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&siginfo)), syscall.WEXITED|wNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return errno == 0
		}
	}
}

// exitedNow reports whether the child pid has exited, without waiting and
// without reaping it. Call only while the child is not reaped.
func exitedNow(pid int) bool {
	const (
		pPID    = 1
		wNOWAIT = 0x1000000
	)
	var siginfo [16]uint64 // si_signo is the first int32: SIGCHLD if the child is waitable
	_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
		uintptr(unsafe.Pointer(&siginfo)), syscall.WEXITED|syscall.WNOHANG|wNOWAIT, 0, 0)
	return errno == 0 && *(*int32)(unsafe.Pointer(&siginfo)) == int32(syscall.SIGCHLD)
}

// processesWithToken finds the processes whose environment holds one of
// tokens as its KILN_INSTANCE_TOKEN: the instances of an earlier run and
// whatever they started. It maps PID to token.
func processesWithToken(tokens map[string]bool) map[int]string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self, parent := os.Getpid(), os.Getppid()
	key := []byte(instanceTokenVar + "=")
	found := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid == parent {
			continue
		}
		environ, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue // gone, or not ours to read
		}
		for kv := range bytes.SplitSeq(environ, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, key); ok {
				if tokens[string(v)] {
					found[pid] = string(v)
				}
				break
			}
		}
	}
	return found
}

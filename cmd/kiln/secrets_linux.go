package main

import (
	"fmt"
	"syscall"
)

// hideMemory sets the process non-dumpable (prctl(2), PR_SET_DUMPABLE): its
// /proc/<pid> files (environ, mem, maps, fd...) then belong to root, other
// processes of the same user cannot ptrace it, and it leaves no core dump.
func hideMemory() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", errno)
	}
	return nil
}

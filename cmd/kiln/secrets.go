package main

import "os"

// secretEnv are the variables of Kiln's environment that hold secrets.
// `kiln serve` reads them once, at start, then removes them, so that
// nothing it starts later (an instance, a helper) can inherit them by
// mistake.
var secretEnv = []string{"KILN_SECRET_ACCESS_KEY", "KILN_TOKEN", "KILN_SESSION_TOKEN"}

// forgetSecrets removes the secrets from Kiln's environment once read, and
// makes the process non-dumpable where the system allows it: the kernel
// keeps the environment a process started with in its memory, where
// /proc/<pid>/environ shows it whatever os.Unsetenv did, and only the
// non-dumpable flag keeps processes of the same user (an instance run as
// Kiln's own user) from reading it there or attaching a debugger.
func forgetSecrets() error {
	for _, k := range secretEnv {
		if err := os.Unsetenv(k); err != nil {
			return err
		}
	}
	return hideMemory()
}

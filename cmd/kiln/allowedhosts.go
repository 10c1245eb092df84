package main

import (
	"os"
	"strings"
)

// allowedHostsEnv is the default of --allowed-host: KILN_ALLOWED_HOSTS, a
// comma-separated list.
func allowedHostsEnv() []string {
	var hosts []string
	for _, h := range strings.Split(os.Getenv("KILN_ALLOWED_HOSTS"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

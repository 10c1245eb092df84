package fleet

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// instanceTokenVar carries a random token in each instance's environment,
// which its PID file records too. Everything the instance starts inherits
// it, so a later run can tell the instance's processes from any process
// that has since taken one of their PIDs, and from the instances of another
// Kiln on the same machine, whose IDs may well be the same.
const instanceTokenVar = "KILN_INSTANCE_TOKEN"

func newToken() string {
	return rand.Text()
}

// pidFile is what RunDir/<instanceID>.pid holds: "<pid> <token>\n".
func pidFile(pid int, token string) []byte {
	return fmt.Appendf(nil, "%d %s\n", pid, token)
}

func parsePIDFile(data []byte) (pid int, token string, ok bool) {
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, "", false
	}
	pid, err := strconv.Atoi(f[0])
	return pid, f[1], err == nil && pid > 0 && f[1] != ""
}

// killLeftovers kills the instance processes that an earlier run recorded
// under RunDir and did not stop (it was killed, or the machine lost power),
// and removes their PID files. A process is killed only if its environment
// holds the recorded token. Pdeathsig has usually killed the instances
// themselves already; what is left is what they started.
func (m *Manager) killLeftovers() {
	entries, err := os.ReadDir(m.cfg.RunDir)
	if err != nil {
		return
	}
	tokens := map[string]bool{}
	leaders := map[string]int{}      // token → the instance's own PID
	instances := map[string]string{} // token → instance ID
	var files []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".pid") || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(m.cfg.RunDir, e.Name())
		files = append(files, path)
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if pid, token, ok := parsePIDFile(data); ok {
			tokens[token] = true
			leaders[token] = pid
			instances[token] = strings.TrimSuffix(e.Name(), ".pid")
		}
	}
	if len(tokens) > 0 {
		for pid, token := range processesWithToken(tokens) {
			m.log.Warn("killing a process left by an earlier run", "instance", instances[token], "pid", pid)
			if pid == leaders[token] {
				if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
					_ = syscall.Kill(-pid, syscall.SIGKILL)
				}
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, f := range files {
		_ = os.Remove(f)
	}
}

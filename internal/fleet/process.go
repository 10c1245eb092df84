package fleet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/shlex"
)

// proc is one started process: one incarnation of an instance.
type proc struct {
	id      string
	token   string // instanceTokenVar's value
	pid     int
	port    int
	addr    string
	logPath string
	pidPath string
	cmd     *exec.Cmd

	// exited is closed once the process has been reaped; waitErr is what
	// Wait returned, readable after that.
	exited  chan struct{}
	waitErr error

	mu   sync.Mutex
	gone bool // the process may have been reaped: its PID no longer names it
}

const (
	sigTERM = syscall.SIGTERM
	sigKILL = syscall.SIGKILL
)

// signal sends sig to the process's group, unless the process may already
// have been reaped (then the PID could name someone else).
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.gone {
		_ = syscall.Kill(-p.pid, sig)
	}
}

// hasExited reports whether the process has exited, even if the goroutine
// that reaps it has not closed exited yet.
func (p *proc) hasExited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gone || exitedNow(p.pid)
}

// launch starts a new incarnation of a slot. It records the incarnation in
// the slot (Starting) before it tries, so that a failure has an instance to
// show; the error is the reason the process could not start.
func (m *Manager) launch(s *slot, spec Spec) (p *proc, err error) {
	k := s.key
	id := m.nextIncarnation(k)
	var logPath string
	if safeName(k.endpoint) && safeName(k.fleet) {
		logPath = filepath.Join(m.cfg.LogDir, k.endpoint, id+".log")
	}
	m.mu.Lock()
	s.launches++
	s.inst = Instance{
		ID: id, Endpoint: k.endpoint, FleetID: k.fleet, Ordinal: k.ordinal,
		State: StateStarting, StartedAt: m.clock.Now(), Restarts: s.launches - 1,
		LastError: s.inst.LastError, LogPath: logPath,
	}
	m.mu.Unlock()
	m.changed()

	if logPath == "" {
		return nil, fmt.Errorf("endpoint %q or fleet %q cannot name a log file", k.endpoint, k.fleet)
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	defer logf.Close() // the child has its own copy
	defer func() {
		if err != nil {
			writeNote(logf, m.clock.Now(), id, "could not start: "+err.Error())
		}
	}()

	argv, err := shlex.Split(spec.Container.Image)
	if err != nil {
		return nil, fmt.Errorf("cannot split Image %q into words: %v", spec.Container.Image, err)
	}
	if len(argv) == 0 {
		return nil, errors.New("Image is empty; it should be the command line that starts the model server")
	}
	path, err := m.policy.lookPath(argv[0])
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			err = ee.Err
		}
		return nil, fmt.Errorf("cannot run %q: %v", argv[0], err)
	}
	// Checked again here, not only when the model was created: the record
	// may predate the allow-list, or this version of Kiln.
	if err := m.policy.Check(path, argv); err != nil {
		return nil, err
	}
	port, err := m.pickPort()
	if err != nil {
		return nil, err
	}
	token := newToken()
	attr := sysProcAttr()
	attr.Credential = m.user.credential()
	cmd := &exec.Cmd{
		Path:        path,
		Args:        argv,
		Env:         m.env(spec, id, token, port),
		Stdout:      logf,
		Stderr:      logf,
		SysProcAttr: attr,
	}
	writeNote(logf, m.clock.Now(), id, fmt.Sprintf("starting on port %d: %s", port, spec.Container.Image))
	if err := m.spawn(cmd); err != nil {
		m.releasePort(port)
		return nil, fmt.Errorf("cannot start %q: %v", argv[0], err)
	}
	p = &proc{
		id: id, token: token, pid: cmd.Process.Pid, port: port, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		logPath: logPath, pidPath: filepath.Join(m.cfg.RunDir, id+".pid"),
		cmd: cmd, exited: make(chan struct{}),
	}
	if err := os.WriteFile(p.pidPath, pidFile(p.pid, token), 0o600); err != nil {
		m.log.Warn("writing PID file", "instance", id, "error", err)
	}
	m.workers.Go(func() { m.wait(p) })
	m.update(s, func(in *Instance) { in.PID, in.Addr = p.pid, p.addr })
	m.log.Info("instance started", "instance", id, "pid", p.pid, "addr", p.addr)
	return p, nil
}

// wait reaps the process, kills whatever it left in its process group, and
// closes p.exited.
func (m *Manager) wait(p *proc) {
	var err error
	if waitExited(p.pid) {
		// The process has exited but is not reaped, so its PID, which is
		// also its process group's ID, cannot have been reused: kill what
		// it left behind (workers it forked), then reap it.
		p.mu.Lock()
		_ = syscall.Kill(-p.pid, sigKILL)
		p.gone = true
		p.mu.Unlock()
		err = p.cmd.Wait()
	} else {
		err = p.cmd.Wait()
		p.mu.Lock()
		p.gone = true
		p.mu.Unlock()
	}
	p.waitErr = err
	if rmErr := os.Remove(p.pidPath); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		m.log.Warn("removing PID file", "instance", p.id, "error", rmErr)
	}
	m.releasePort(p.port)
	m.note(p, "exited: %s", exitStatus(err))
	close(p.exited)
}

// spawnRequest asks the spawner goroutine to start a command.
type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

// spawn starts cmd from the spawner goroutine.
func (m *Manager) spawn(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	m.spawnc <- spawnRequest{cmd, errc}
	return <-errc
}

// spawner starts every process, from one OS thread that lives as long as
// Run. Pdeathsig is sent when the thread that forked the child exits, not
// the process (prctl(2), PR_SET_PDEATHSIG), and the Go runtime ends a thread
// whenever a goroutine locked to it returns; a child forked from an
// arbitrary goroutine would be killed the day some unrelated locked
// goroutine that ran on that thread returned. This goroutine stays locked
// and is not unlocked when it returns, after Run has stopped every
// instance: its thread ends then, taking with it any child that somehow
// outlived Run.
func (m *Manager) spawner() {
	runtime.LockOSThread()
	for req := range m.spawnc {
		req.errc <- req.cmd.Start()
	}
}

// canonicalPath makes path absolute and resolves symbolic links in its
// directory, but not in its last element: /bin/sh and /usr/bin/sh are the
// same when /bin links to /usr/bin, but /bin/sh and /bin/ls are different
// commands even when both link to busybox, which looks at its name.
func canonicalPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	dir, file := filepath.Split(abs)
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(d, file)
	}
	return abs
}

// pickPort finds a free loopback port for an instance: the kernel picks one
// for a listener that is closed at once. The port could be taken by someone
// else before the instance binds it; then the instance fails its launch and
// its next incarnation gets another port.
func (m *Manager) pickPort() (int, error) {
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		m.mu.Lock()
		taken := m.ports[port]
		if !taken {
			m.ports[port] = true
		}
		m.mu.Unlock()
		if !taken {
			return port, nil
		}
	}
	return 0, errors.New("find a free port: the kernel keeps offering ports in use")
}

func (m *Manager) releasePort(port int) {
	m.mu.Lock()
	delete(m.ports, port)
	m.mu.Unlock()
}

// nextIncarnation numbers a new incarnation of a slot, and returns its
// instance ID: one more than any this manager used, or that an earlier run
// left a log file for, so that instance IDs are never reused. Numbers are
// kept per ID prefix rather than per slot, so that two slots whose names
// run together ("a-b" + "c", "a" + "b-c") still get different IDs.
func (m *Manager) nextIncarnation(k slotKey) string {
	prefix := fmt.Sprintf("%s-%s-%d-", k.endpoint, k.fleet, k.ordinal)
	m.mu.Lock()
	_, known := m.inc[prefix]
	m.mu.Unlock()
	seen := 0
	if !known && safeName(k.endpoint) {
		entries, _ := os.ReadDir(filepath.Join(m.cfg.LogDir, k.endpoint))
		for _, e := range entries {
			rest, ok := strings.CutPrefix(e.Name(), prefix)
			if !ok {
				continue
			}
			rest, ok = strings.CutSuffix(rest, ".log")
			if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" {
				continue
			}
			if n, err := strconv.Atoi(rest); err == nil {
				seen = max(seen, n)
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := max(m.inc[prefix], seen) + 1
	m.inc[prefix] = n
	return prefix + strconv.Itoa(n)
}

// notePrefix starts the lines Kiln writes into an instance's log.
const notePrefix = "[kiln] "

// note appends one of Kiln's own lines to an instance's log.
func (m *Manager) note(p *proc, format string, args ...any) {
	f, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	writeNote(f, m.clock.Now(), p.id, fmt.Sprintf(format, args...))
}

func writeNote(w io.Writer, now time.Time, id, msg string) {
	fmt.Fprintf(w, "%s%s %s: %s\n", notePrefix, now.Format("2006-01-02T15:04:05.000Z07:00"), id, msg)
}

// exitStatus describes how a process ended: "exit status 3", "signal: killed".
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	return err.Error()
}

// logTail returns the last lines the process wrote to its log (not Kiln's
// own notes), on one line, for a failure reason.
func logTail(path string) string {
	const (
		maxRead  = 4096
		maxLines = 5
		maxLen   = 500
	)
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var buf []byte
	if fi, err := f.Stat(); err == nil && fi.Size() > maxRead {
		buf = make([]byte, maxRead)
		n, _ := f.ReadAt(buf, fi.Size()-maxRead)
		buf = buf[:n]
		if i := strings.IndexByte(string(buf), '\n'); i >= 0 {
			buf = buf[i+1:] // drop the partial first line
		}
	} else {
		buf, _ = io.ReadAll(f)
	}
	var lines []string
	for _, l := range strings.Split(string(buf), "\n") {
		l = strings.TrimSpace(strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return ' '
			}
			return r
		}, l))
		if l == "" || strings.HasPrefix(l, notePrefix) {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	out := strings.Join(lines, " | ")
	if len(out) > maxLen {
		out = "…" + strings.ToValidUTF8(out[len(out)-maxLen:], "")
	}
	return out
}

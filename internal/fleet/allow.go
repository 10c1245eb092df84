package fleet

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/google/shlex"

	"github.com/kiln-serve/kiln"
)

// kilnMainPackage is the import path of Kiln's command, as the Go linker
// records it in every binary built from it, whatever the file is called.
const kilnMainPackage = "github.com/kiln-serve/kiln/cmd/kiln"

// selfSubcommand is the only thing an instance may run Kiln's own binary
// for: the demo model server. Anything else (serve, demo) would start a
// second Kiln, which knows nothing of this one's allow-list.
const selfSubcommand = "demo-model"

// restWord, as the last word of a command line pattern, matches any number
// of further arguments (none included).
const restWord = "**"

// CommandPolicy decides which command lines an instance may run: Kiln's
// own binary only as `kiln demo-model`, and, when the operator gave an
// allow-list, only what one of its entries allows. Its zero value (no
// entries) allows any command but Kiln's own.
//
// An entry is a command line split into words as a shell would (no shell
// runs). One word names an executable: resolved as exec.LookPath does with
// Kiln's own PATH, it allows that executable with any arguments, except
// that an interpreter (sh, bash, python3, node, ...) must be given a script
// file rather than code or options, and a command that runs other commands
// (env, sudo, xargs, awk, ...) is not allowed by its name alone. More
// words make a pattern: the first names the executable as above, each
// further word is a path.Match pattern that must match the argument in the
// same place, and the argument count must be the same, unless the last
// word is "**", which matches any further arguments. A wildcard never
// matches an argument with a ".." path element, and an interpreter's
// options (and a script under /proc, /dev or /sys) must be matched by
// words without wildcards: `bash -c *` allows inline code, `bash *` * does
// not.
type CommandPolicy struct {
	entries []commandEntry
	// self is the file the bare word "kiln" names, in an Image and in an
	// entry; "" looks it up in PATH like any other name.
	self string
}

// selfName is the word that names Kiln itself in an Image: `kiln
// demo-model` runs the demo model of the Kiln that starts the instance,
// however that Kiln was started (go run puts no kiln on PATH).
const selfName = "kiln"

// lookPath resolves a command line's first word: the bare word "kiln" is
// the policy's own binary when it has one, anything else is looked up as
// exec.LookPath does with Kiln's own PATH.
func (p *CommandPolicy) lookPath(name string) (string, error) {
	if name == selfName && p != nil && p.self != "" {
		return p.self, nil
	}
	return exec.LookPath(name)
}

type commandEntry struct {
	text     string   // as given, for messages
	exe      string   // the first word, resolved when checked
	patterns []string // the argument patterns; nil for an executable entry
	rest     bool     // the last word was restWord
}

// ParseCommandPolicy parses allow-list entries; nil or empty allows any
// command but Kiln's own.
func ParseCommandPolicy(entries []string) (*CommandPolicy, error) {
	p := &CommandPolicy{}
	for i, text := range entries {
		words, err := shlex.Split(text)
		if err != nil {
			return nil, fmt.Errorf("allowed command %d (%q): cannot split it into words: %v", i+1, text, err)
		}
		if len(words) == 0 {
			return nil, fmt.Errorf("allowed command %d is empty", i+1)
		}
		e := commandEntry{text: text, exe: words[0]}
		if len(words) > 1 {
			e.patterns = words[1:]
			if e.patterns[len(e.patterns)-1] == restWord {
				e.patterns, e.rest = e.patterns[:len(e.patterns)-1], true
			}
			for _, pat := range e.patterns {
				if _, err := path.Match(pat, ""); err != nil {
					return nil, fmt.Errorf("allowed command %q: bad pattern %q: %v", text, pat, err)
				}
			}
			if e.patterns == nil {
				e.patterns = []string{}
			}
		}
		p.entries = append(p.entries, e)
	}
	return p, nil
}

// Warnings describe entries that allow more than an operator may think:
// an interpreter named alone runs any script file on the host.
func (p *CommandPolicy) Warnings() []string {
	var out []string
	for _, e := range p.entries {
		exe, err := p.lookPath(e.exe)
		if err != nil || e.patterns != nil {
			continue
		}
		if k := kindOf(exe); k == interpreter || k == python {
			out = append(out, fmt.Sprintf("allowed command %q is an interpreter: it may run any script file on this host that the instance user can read; a pattern naming the script is narrower", e.text))
		}
	}
	return out
}

// Empty reports whether the policy has no allow-list, so that any command
// but Kiln's own may run.
func (p *CommandPolicy) Empty() bool { return p == nil || len(p.entries) == 0 }

// String lists the entries as given.
func (p *CommandPolicy) String() string {
	if p.Empty() {
		return "(none: any command)"
	}
	var texts []string
	for _, e := range p.entries {
		texts = append(texts, e.text)
	}
	return strings.Join(texts, ", ")
}

// CheckImage reports, as an EINVALID *kiln.Error naming the Image and the
// allow-list, whether a model's Image may not run. An executable that
// cannot be found is refused only when there is an allow-list, since it
// cannot then be compared with it; otherwise it fails when an instance
// starts, as it would have.
func (p *CommandPolicy) CheckImage(image string) error {
	argv, err := shlex.Split(image)
	if err != nil {
		return kiln.Errorf(kiln.EINVALID, "PrimaryContainer.Image %q cannot be split into words: %v.", image, err)
	}
	if len(argv) == 0 {
		return kiln.Errorf(kiln.EINVALID, "PrimaryContainer.Image is empty; it should be the command line that starts the model server.")
	}
	exe, err := p.lookPath(argv[0])
	if err != nil {
		if p.Empty() {
			return nil
		}
		return kiln.Errorf(kiln.EINVALID, "PrimaryContainer.Image %q: %q cannot be found in Kiln's PATH, so it cannot be checked against the allowed commands (--allow-command %s).", image, argv[0], p.String())
	}
	if err := p.Check(exe, argv); err != nil {
		return kiln.Errorf(kiln.EINVALID, "PrimaryContainer.Image %q: %v.", image, err)
	}
	return nil
}

// Check reports why argv, whose first word resolved to the executable exe,
// may not run; nil if it may.
func (p *CommandPolicy) Check(exe string, argv []string) error {
	if isKiln(argv[0], exe) && !slices.Equal(argv[1:], []string{selfSubcommand}) {
		return fmt.Errorf("%s is Kiln itself, which an instance may run only as \"%s %s\" (with no other argument)", exe, argv[0], selfSubcommand)
	}
	if p.Empty() {
		return nil
	}
	kind := kindOf(exe)
	if kind == runner {
		if i := p.kilnArgument(argv); i > 0 {
			return fmt.Errorf("%s would run Kiln itself (%q), which an instance may run only as \"kiln %s\"", argv[0], argv[i], selfSubcommand)
		}
	}
	want := canonicalPath(exe)
	var reasons []string
	for _, e := range p.entries {
		allowed, err := p.lookPath(e.exe)
		if err != nil || canonicalPath(allowed) != want {
			continue
		}
		if reason := e.refuses(kind, argv); reason != "" {
			reasons = append(reasons, fmt.Sprintf("%q %s", e.text, reason))
			continue
		}
		return nil
	}
	msg := fmt.Sprintf("%q (%s) is not one of the commands this server is allowed to run (--allow-command %s)", argv[0], exe, p.String())
	if len(reasons) > 0 {
		msg = fmt.Sprintf("%q (%s) is not allowed: the allowed command %s", argv[0], exe, strings.Join(reasons, "; and "))
	}
	return errors.New(msg)
}

// refuses says why the entry does not allow argv, whose executable it
// names; "" if it allows it.
func (e commandEntry) refuses(kind commandKind, argv []string) string {
	args := argv[1:]
	sensitive := sensitiveArgs(kind, args)
	if e.patterns == nil {
		switch {
		case kind == runner:
			return fmt.Sprintf("names %s, which runs other commands: allow its command lines with a pattern (--allow-command '%s ARG...')", argv[0], argv[0])
		case len(sensitive) > 0:
			return fmt.Sprintf("allows %s to run a script file, not %q: allow that with a pattern that spells it out", argv[0], args[sensitive[0]])
		}
		return ""
	}
	switch {
	case e.rest && len(args) < len(e.patterns):
		return fmt.Sprintf("wants at least %d arguments, not %d", len(e.patterns), len(args))
	case !e.rest && len(args) != len(e.patterns):
		return fmt.Sprintf("wants %d arguments, not %d", len(e.patterns), len(args))
	}
	for i, a := range args {
		pat := restWord
		if i < len(e.patterns) {
			pat = e.patterns[i]
		}
		literal := pat != restWord && !strings.ContainsAny(pat, `*?[\`)
		if literal {
			if a != pat {
				return fmt.Sprintf("does not match argument %d (%q)", i+1, a)
			}
			continue
		}
		if slices.Contains(sensitive, i) {
			return fmt.Sprintf("matches %q, an option or file of the interpreter %s, only with a word without wildcards", a, argv[0])
		}
		if hasDotDot(a) {
			return fmt.Sprintf("does not match argument %d (%q): a wildcard never matches a \"..\" path element", i+1, a)
		}
		if pat == restWord {
			continue
		}
		if ok, _ := path.Match(pat, a); !ok {
			return fmt.Sprintf("does not match argument %d (%q)", i+1, a)
		}
	}
	return ""
}

func hasDotDot(arg string) bool {
	return slices.Contains(strings.Split(filepath.ToSlash(arg), "/"), "..")
}

// commandKind sorts executables by what their arguments can make them do.
type commandKind int

const (
	plain       commandKind = iota
	interpreter             // runs code from its arguments, or the script file they name
	python                  // an interpreter with options that are harmless
	runner                  // runs a command its arguments name, or code they hold
)

var (
	pythonName      = regexp.MustCompile(`^(python|pypy)[0-9.]*$`)
	interpreterName = regexp.MustCompile(`^((ba|da|z|k|mk|pdk|a|ya|r|rba|c|tc)?sh|ksh93|fish|(perl|ruby|php|lua|tclsh|wish)[0-9.]*|luajit|node|nodejs|deno|bun|Rscript|R|julia|jshell|groovy|scala|osascript|pwsh|powershell)$`)
	runnerName      = regexp.MustCompile(`^(env|nice|nohup|timeout|stdbuf|setsid|sudo|doas|su|runuser|pkexec|xargs|find|time|watch|flock|ionice|taskset|chrt|unshare|nsenter|chroot|strace|ltrace|gdb|valgrind|busybox|toybox|[gmn]?awk|sed|script|parallel|expect|make|ssh|socat|systemd-run|at|batch|screen|tmux|setpriv|capsh|prlimit|firejail|bwrap|docker|podman|kubectl)$`)
)

// kindOf looks at an executable's name, and at the name of what it links
// to (/usr/bin/python3 → python3.12, /bin/sh → dash).
func kindOf(exe string) commandKind {
	names := []string{filepath.Base(exe)}
	if target, err := filepath.EvalSymlinks(exe); err == nil {
		names = append(names, filepath.Base(target))
	}
	kind := plain
	for _, n := range names {
		switch {
		case runnerName.MatchString(n):
			return runner
		case pythonName.MatchString(n):
			kind = python
		case interpreterName.MatchString(n) && kind == plain:
			kind = interpreter
		}
	}
	return kind
}

// pythonSafeFlags are the options of python that take no argument and
// cannot make it run code from anywhere but its script.
var pythonSafeFlags = []string{"-u", "-O", "-OO", "-B", "-s", "-S", "-E", "-I", "-P", "-q", "-b", "-bb", "-d", "-v", "-R"}

// sensitiveArgs returns the indexes (in args) of the arguments that make an
// interpreter run something other than a script file: its options before
// the script ("-c", "-e", "-m", "--eval", "-"), and a script that is not a
// file (/dev/stdin, /proc/self/environ, ...).
func sensitiveArgs(kind commandKind, args []string) []int {
	if kind != interpreter && kind != python {
		return nil
	}
	var out []int
	for i, a := range args {
		if a == "" || a == "-" || a[0] == '-' || a[0] == '+' {
			if !(kind == python && slices.Contains(pythonSafeFlags, a)) {
				out = append(out, i)
			}
			continue
		}
		if specialFile(a) {
			out = append(out, i)
		}
		break // the script: what follows is its own arguments
	}
	return out
}

// specialFile reports whether a script path names, or links to, a file
// whose content is not a script on disk: a process's environment or
// memory, a device, standard input.
func specialFile(p string) bool {
	abs, err := filepath.Abs(p)
	if err != nil {
		return true
	}
	candidates := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		candidates = append(candidates, real)
	}
	for _, c := range candidates {
		for _, dir := range []string{"/proc", "/dev", "/sys"} {
			if c == dir || strings.HasPrefix(c, dir+"/") {
				return true
			}
		}
	}
	return false
}

// kilnArgument returns the index of the first argument of a runner (env,
// nohup, ...) that names Kiln's binary without "demo-model" as its only
// argument after it, or -1.
func (p *CommandPolicy) kilnArgument(argv []string) int {
	for i := 1; i < len(argv); i++ {
		exe, err := p.lookPath(argv[i])
		if err != nil {
			if filepath.Base(argv[i]) != "kiln" {
				continue
			}
			exe = argv[i]
		}
		if isKiln(argv[i], exe) && !slices.Equal(argv[i+1:], []string{selfSubcommand}) {
			return i
		}
	}
	return -1
}

// isKiln reports whether the executable exe, named name in a command line,
// is Kiln: by its name (or the name of what it links to), by the package
// the Go linker recorded in it, or because it is the very file this
// process runs.
func isKiln(name, exe string) bool {
	names := []string{filepath.Base(name), filepath.Base(exe)}
	if target, err := filepath.EvalSymlinks(exe); err == nil {
		names = append(names, filepath.Base(target))
	}
	for _, n := range names {
		if n == "kiln" || strings.HasPrefix(n, "kiln.") {
			return true
		}
	}
	if bi, err := buildinfo.ReadFile(exe); err == nil && bi.Path == kilnMainPackage {
		return true
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Path == kilnMainPackage {
		self, err := os.Executable()
		if err != nil {
			return false
		}
		a, errA := os.Stat(self)
		b, errB := os.Stat(exe)
		return errA == nil && errB == nil && os.SameFile(a, b)
	}
	return false
}

package kiln

import (
	"slices"
	"strings"
)

// hookVariables are environment variables that make a dynamic loader, a
// C library or an interpreter load or run code other than the program
// named: a model's Environment may not set them, since they would turn an
// allowed command into any command (LD_PRELOAD into any allowed binary,
// BASH_ENV into any allowed bash script). Module search paths that models
// legitimately set (PYTHONPATH, NODE_PATH) are allowed: they only name
// directories already on the host.
var hookVariables = []string{
	// glibc's loader and the variables it ignores in setuid programs
	"GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCPATH", "NLSPATH",
	"NIS_PATH", "RESOLV_HOST_CONF",
	// shells
	"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "IFS", "CDPATH",
	"GLOBIGNORE", "BASH_LOADABLES_PATH", "BASH_XTRACEFD", "ZDOTDIR", "EXECIGNORE",
	// Python: startup files, interactive mode, another standard library,
	// warning filters that import modules, the breakpoint hook
	"PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONHOME", "PYTHONEXECUTABLE", "PYTHONUSERBASE",
	"PYTHONWARNINGS", "PYTHONBREAKPOINT", "PYTHONPLATLIBDIR",
	// Perl, Ruby, Node, the JVM
	"PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "PERL_MB_OPT", "PERL_MM_OPT",
	"RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_REPL_EXTERNAL_MODULE",
	"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS",
	// libraries that load plugins named by the environment
	"OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES", "GIO_MODULE_DIR", "GST_PLUGIN_PATH",
	// programs that run the command a variable names
	"BROWSER", "EDITOR", "VISUAL", "PAGER", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_EXEC_PATH",
}

// hookPrefixes are families of such variables.
var hookPrefixes = []string{
	"LD_",        // LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, LD_DEBUG_OUTPUT...
	"DYLD_",      // macOS's loader
	"MALLOC_",    // MALLOC_TRACE writes a file, MALLOC_CHECK_ changes the allocator
	"BASH_FUNC_", // exported shell functions, run by every bash that starts
}

// validateEnvironmentHooks refuses, naming the first by name, the
// variables of an Environment that hook the loader or an interpreter.
func validateEnvironmentHooks(env map[string]string) error {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		u := strings.ToUpper(k)
		hook := slices.Contains(hookVariables, u)
		for _, p := range hookPrefixes {
			hook = hook || strings.HasPrefix(u, p)
		}
		if hook {
			return Errorf(EINVALID, "PrimaryContainer.Environment may not set %s: it makes the loader or an interpreter run other code than the Image names. Set it in a script that the allowed command runs, if the model needs it.", k)
		}
	}
	return nil
}

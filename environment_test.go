package kiln

import (
	"strings"
	"testing"
)

func TestModelEnvironmentHooks(t *testing.T) {
	refused := []string{
		"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "ld_preload", "DYLD_INSERT_LIBRARIES",
		"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "BASH_FUNC_ls", "IFS",
		"PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONHOME", "PYTHONWARNINGS",
		"PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT", "NODE_OPTIONS",
		"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS",
		"GCONV_PATH", "MALLOC_CHECK_", "MALLOC_TRACE", "GLIBC_TUNABLES", "OPENSSL_CONF",
	}
	for _, k := range refused {
		m := Model{ModelName: "m", PrimaryContainer: &ContainerDef{Image: "srv", Environment: map[string]string{
			"MODEL_DIR": "/opt/m", k: "x",
		}}}
		err := m.Validate()
		if err == nil {
			t.Errorf("Environment %s: Validate() = nil, want an error", k)
			continue
		}
		if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), "may not set "+k+":") {
			t.Errorf("Environment %s: Validate() = %v (%s), want an invalid error naming it", k, err, ErrorCode(err))
		}
	}
	allowed := map[string]string{
		"PYTHONPATH": "/opt/model", "NODE_PATH": "/opt/node", "PATH": "/usr/bin", "HOME": "/tmp",
		"CUDA_VISIBLE_DEVICES": "0", "OMP_NUM_THREADS": "4", "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8",
		"MODEL_LD_PRELOAD_NOTE": "not a hook: the prefix is MODEL_",
	}
	m := Model{ModelName: "m", PrimaryContainer: &ContainerDef{Image: "srv", Environment: allowed}}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate() with %v: %v", allowed, err)
	}
}

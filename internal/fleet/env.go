package fleet

import (
	"maps"
	"os"
	"slices"
	"strconv"

	"github.com/google/shlex"

	"github.com/kiln-serve/kiln"
)

// inheritedEnv are the only variables of Kiln's own environment an instance
// gets: what a program needs to find commands, speak the user's language and
// tell the time. Nothing else is passed on, so that Kiln's secrets
// (KILN_SECRET_ACCESS_KEY, a proxy's password, a cloud token) and its
// loader settings stay out of instances.
var inheritedEnv = []string{
	"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
	"LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY", "LC_MESSAGES",
}

// env is an instance's whole environment: the basics of inheritedEnv from
// Kiln's own (HOME, USER and LOGNAME those of the instance user, if any),
// then the model's Environment (which the API has checked for loader and
// interpreter hooks), then the variables of the container contract and
// Kiln's own, which the model cannot override.
func (m *Manager) env(spec Spec, id, token string, port int) []string {
	env := map[string]string{}
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	if u := m.user; u != nil {
		env["HOME"], env["USER"], env["LOGNAME"] = u.home, u.name, u.name
	}
	maps.Copy(env, spec.Container.Environment)
	env["SAGEMAKER_BIND_TO_PORT"] = strconv.Itoa(port)
	env["PORT"] = strconv.Itoa(port)
	if spec.Container.ModelDataUrl != "" {
		env["KILN_MODEL_DATA_URL"] = spec.Container.ModelDataUrl
	}
	env["KILN_ENDPOINT"] = spec.Endpoint
	env["KILN_VARIANT"] = spec.VariantName
	env["KILN_ENDPOINT_CONFIG"] = spec.EndpointConfigName
	env["KILN_INSTANCE_ID"] = id
	env[instanceTokenVar] = token
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// CheckImage reports, as an EINVALID *kiln.Error, whether this manager
// would refuse to run a model's Image: Kiln's own binary but as
// `kiln demo-model`, or a command the allow-list does not allow.
//
// When instances run as another user, it also refuses an executable that
// user could not run (a directory on the way it may not enter), which
// would otherwise only fail when an instance starts.
func (m *Manager) CheckImage(image string) error {
	if err := m.policy.CheckImage(image); err != nil {
		return err
	}
	if m.user == nil {
		return nil
	}
	argv, _ := shlex.Split(image) // CheckImage split it
	exe, err := m.policy.lookPath(argv[0])
	if err != nil {
		return nil // fails when an instance starts, with the reason
	}
	if err := m.user.canExecute(exe); err != nil {
		return kiln.Errorf(kiln.EINVALID, "PrimaryContainer.Image %q: instances run as user %s (--instance-user), which cannot run it: %v.", image, m.user.name, err)
	}
	return nil
}

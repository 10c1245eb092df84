package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-serve/kiln"
)

// ApplyFile is what `kiln apply` reads: resources declared in one file.
type ApplyFile struct {
	Models          []kiln.Model          `json:"models,omitempty"`
	EndpointConfigs []kiln.EndpointConfig `json:"endpointConfigs,omitempty"`
	Alarms          []kiln.Alarm          `json:"alarms,omitempty"`
	Endpoints       []ApplyEndpoint       `json:"endpoints,omitempty"`
}

// ApplyEndpoint declares an endpoint. When it exists on another config,
// apply updates it with DeploymentConfig (a blue/green or rolling deploy).
type ApplyEndpoint struct {
	EndpointName       string                 `json:"EndpointName"`
	EndpointConfigName string                 `json:"EndpointConfigName"`
	DeploymentConfig   *kiln.DeploymentConfig `json:"DeploymentConfig,omitempty"`
	Tags               []kiln.Tag             `json:"Tags,omitempty"`
}

func newApplyCmd(c *cli) *cobra.Command {
	var file string
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update the models, endpoint configs, alarms and endpoints declared in a file",
		Long: `apply makes the server hold what FILE declares. It is idempotent: resources that
already exist as declared are left alone, so the file can live in version control.
Models and endpoint configs are immutable; declare a new name to change one. An
endpoint declared with another endpoint config than it runs is updated to it,
with the DeploymentConfig given (blue/green, canary, linear or rolling).

Then it waits (--wait, the default) until no endpoint of the file is being created
or updated, up to --timeout, and exits 1 naming each endpoint that failed, or
that does not run the config the file declares (its update rolled back), with
its FailureReason. --wait=false returns as soon as the changes are accepted.

"kiln demo-model" as an Image runs the demo model of the Kiln that serves the
file, whatever PATH holds.`,
		Example: `  kiln apply -f hello.yaml

  # hello.yaml
  models:
    - ModelName: hello-v1
      PrimaryContainer:
        Image: kiln demo-model
  endpointConfigs:
    - EndpointConfigName: hello-v1
      ProductionVariants:
        - {VariantName: AllTraffic, ModelName: hello-v1, InitialInstanceCount: 2}
  endpoints:
    - EndpointName: hello
      EndpointConfigName: hello-v1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(os.Stdin)
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", file, err)
			}
			name := file
			if file == "-" {
				name = "<stdin>"
			}
			f, err := parseApplyFile(name, data)
			if err != nil {
				return err
			}
			if err := apply(cmd.Context(), c, c.client(), f); err != nil {
				return err
			}
			if !wait {
				return nil
			}
			return waitApplied(cmd.Context(), c, c.client(), f, timeout)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "file to apply (YAML or JSON; - for standard input)")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until the file's endpoints are no longer being created or updated, and fail if one failed or rolled back")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultApplyTimeout, "how long --wait waits at most")
	cmd.MarkFlagRequired("file")
	return cmd
}

func apply(ctx context.Context, c *cli, cl kiln.Service, f *ApplyFile) error {
	say := func(kind, name, what string) { fmt.Fprintf(c.out, "%s/%s %s\n", kind, name, what) }
	for i := range f.Models {
		m := f.Models[i]
		old, err := cl.GetModel(ctx, m.ModelName)
		switch {
		case kiln.ErrorCode(err) == kiln.ENOTFOUND:
			if _, err := cl.CreateModel(ctx, &m); err != nil {
				return fmt.Errorf("model %s: %w", m.ModelName, err)
			}
			say("model", m.ModelName, "created")
		case err != nil:
			return err
		case !sameModel(old, &m):
			return fmt.Errorf("model %s exists with another definition; models cannot change, declare a new model name", m.ModelName)
		default:
			say("model", m.ModelName, "unchanged")
		}
	}
	for i := range f.EndpointConfigs {
		ec := f.EndpointConfigs[i]
		old, err := cl.GetEndpointConfig(ctx, ec.EndpointConfigName)
		switch {
		case kiln.ErrorCode(err) == kiln.ENOTFOUND:
			if _, err := cl.CreateEndpointConfig(ctx, &ec); err != nil {
				return fmt.Errorf("endpoint config %s: %w", ec.EndpointConfigName, err)
			}
			say("endpoint-config", ec.EndpointConfigName, "created")
		case err != nil:
			return err
		case !sameJSON(old.ProductionVariants, ec.ProductionVariants):
			return fmt.Errorf("endpoint config %s exists with other variants; endpoint configs cannot change, declare a new name", ec.EndpointConfigName)
		default:
			say("endpoint-config", ec.EndpointConfigName, "unchanged")
		}
	}
	for i := range f.Alarms {
		a := f.Alarms[i]
		old, err := cl.GetAlarm(ctx, a.AlarmName)
		if err == nil && sameAlarm(old, &a) {
			say("alarm", a.AlarmName, "unchanged")
			continue
		}
		if err != nil && kiln.ErrorCode(err) != kiln.ENOTFOUND {
			return err
		}
		if _, err := cl.PutAlarm(ctx, &a); err != nil {
			return fmt.Errorf("alarm %s: %w", a.AlarmName, err)
		}
		say("alarm", a.AlarmName, "configured")
	}
	for _, e := range f.Endpoints {
		old, err := cl.GetEndpoint(ctx, e.EndpointName)
		switch {
		case kiln.ErrorCode(err) == kiln.ENOTFOUND:
			if _, err := cl.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: e.EndpointName, EndpointConfigName: e.EndpointConfigName, DeploymentConfig: e.DeploymentConfig, Tags: e.Tags}); err != nil {
				return fmt.Errorf("endpoint %s: %w", e.EndpointName, err)
			}
			say("endpoint", e.EndpointName, "created")
		case err != nil:
			return err
		case old.Deployment != nil && old.Deployment.EndpointConfigName == e.EndpointConfigName:
			say("endpoint", e.EndpointName, "already updating to "+e.EndpointConfigName)
		case old.EndpointConfigName == e.EndpointConfigName && old.Deployment == nil:
			say("endpoint", e.EndpointName, "unchanged")
		default:
			if _, err := cl.UpdateEndpoint(ctx, kiln.UpdateEndpointInput{EndpointName: e.EndpointName, EndpointConfigName: e.EndpointConfigName, DeploymentConfig: e.DeploymentConfig}); err != nil {
				return fmt.Errorf("endpoint %s: %w", e.EndpointName, err)
			}
			say("endpoint", e.EndpointName, "updating to "+e.EndpointConfigName)
		}
	}
	return nil
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func sameModel(old, m *kiln.Model) bool {
	return sameJSON(old.PrimaryContainer, m.PrimaryContainer) && old.ExecutionRoleArn == m.ExecutionRoleArn
}

// sameAlarm compares the definitions, not the state.
func sameAlarm(old, a *kiln.Alarm) bool {
	o, n := *old, *a
	o.AlarmState, n.AlarmState = kiln.AlarmState{}, kiln.AlarmState{}
	o.AlarmArn, n.AlarmArn = "", ""
	o.AlarmConfigurationUpdatedTimestamp = n.AlarmConfigurationUpdatedTimestamp
	return reflect.DeepEqual(normalize(o), normalize(n))
}

func normalize(a kiln.Alarm) string {
	b, _ := json.Marshal(a)
	return string(b)
}

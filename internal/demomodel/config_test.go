package demomodel

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(nil))
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	if cfg.Port != 8080 {
		t.Errorf("Port %d, want 8080", cfg.Port)
	}
	if cfg.version() != "v1" || cfg.errorStatus() != 500 {
		t.Errorf("version %q status %d, want v1 500", cfg.version(), cfg.errorStatus())
	}
	// The seed comes from the clock; everything else is off.
	if want := (Config{Port: 8080, Seed: cfg.Seed}); !reflect.DeepEqual(cfg, want) {
		t.Errorf("config %+v, want %+v", cfg, want)
	}
}

func TestConfigFromEnvAll(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{
		EnvBindToPort:      "9001",
		EnvPort:            "9002",
		EnvModelDataURL:    " file:///models/m.json ",
		EnvInstanceID:      "ep-a-1",
		EnvVersion:         "v2",
		EnvErrorRate:       "0.25",
		EnvErrorStatus:     "503",
		EnvLatencyMS:       "1.5",
		EnvLatencyJitterMS: "10",
		EnvNeverHealthy:    "1",
		EnvStartupDelayMS:  "2000",
		EnvCrashAfter:      "7",
		EnvStreamDelayMS:   "0.25",
		EnvSeed:            "18446744073709551615",
	}))
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	want := Config{
		Port:          9001,
		ModelDataURL:  "file:///models/m.json",
		InstanceID:    "ep-a-1",
		Version:       "v2",
		ErrorRate:     0.25,
		ErrorStatus:   503,
		Latency:       1500 * time.Microsecond,
		LatencyJitter: 10 * time.Millisecond,
		NeverHealthy:  true,
		StartupDelay:  2 * time.Second,
		CrashAfter:    7,
		StreamDelay:   250 * time.Microsecond,
		Seed:          18446744073709551615,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigFromEnvPort(t *testing.T) {
	for _, tt := range []struct {
		name       string
		bind, port string
		want       int
	}{
		{"neither", "", "", 8080},
		{"PORT only", "", "9002", 9002},
		{"both", "9001", "9002", 9001},
		{"zero lets the system choose", "0", "", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ConfigFromEnv(envOf(map[string]string{EnvBindToPort: tt.bind, EnvPort: tt.port}))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Port != tt.want {
				t.Errorf("Port %d, want %d", cfg.Port, tt.want)
			}
		})
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	tests := []struct {
		name, key, value, want string
	}{
		{"rate not a number", EnvErrorRate, "half", `KILN_DEMO_ERROR_RATE="half": must be a number from 0 to 1`},
		{"rate above 1", EnvErrorRate, "1.01", `KILN_DEMO_ERROR_RATE="1.01"`},
		{"rate negative", EnvErrorRate, "-0.1", `KILN_DEMO_ERROR_RATE="-0.1"`},
		{"rate NaN", EnvErrorRate, "NaN", `KILN_DEMO_ERROR_RATE="NaN"`},
		{"status success", EnvErrorStatus, "200", `KILN_DEMO_ERROR_STATUS="200": must be an integer from 400 to 599`},
		{"status text", EnvErrorStatus, "bad", `KILN_DEMO_ERROR_STATUS="bad"`},
		{"latency negative", EnvLatencyMS, "-5", `KILN_DEMO_LATENCY_MS="-5": must be a number of milliseconds`},
		{"latency Inf", EnvLatencyMS, "Inf", `KILN_DEMO_LATENCY_MS="Inf"`},
		{"latency too long", EnvLatencyMS, "1e12", `KILN_DEMO_LATENCY_MS="1e12"`},
		{"jitter text", EnvLatencyJitterMS, "10ms", `KILN_DEMO_LATENCY_JITTER_MS="10ms"`},
		{"never healthy yes", EnvNeverHealthy, "yes", `KILN_DEMO_NEVER_HEALTHY="yes": must be 1, true, 0 or false`},
		{"startup delay", EnvStartupDelayMS, "soon", `KILN_DEMO_STARTUP_DELAY_MS="soon"`},
		{"crash negative", EnvCrashAfter, "-1", `KILN_DEMO_CRASH_AFTER="-1": must be an integer from 0`},
		{"crash fractional", EnvCrashAfter, "1.5", `KILN_DEMO_CRASH_AFTER="1.5"`},
		{"stream delay", EnvStreamDelayMS, "-1", `KILN_DEMO_STREAM_DELAY_MS="-1"`},
		{"seed negative", EnvSeed, "-3", `KILN_DEMO_SEED="-3": must be an unsigned integer`},
		{"bind port range", EnvBindToPort, "65536", `SAGEMAKER_BIND_TO_PORT="65536": must be an integer from 0 to 65535`},
		{"PORT text", EnvPort, "http", `PORT="http"`},
		{"version control char", EnvVersion, "v1\r\n", "KILN_DEMO_VERSION:"},
		{"instance too long", EnvInstanceID, strings.Repeat("i", 300), "KILN_INSTANCE_ID: longer than 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConfigFromEnv(envOf(map[string]string{tt.key: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s=%q: error %v, want one containing %q", tt.key, tt.value, err, tt.want)
			}
		})
	}
}

func TestConfigFromEnvReportsEveryBadVariable(t *testing.T) {
	_, err := ConfigFromEnv(envOf(map[string]string{
		EnvErrorRate:  "2",
		EnvLatencyMS:  "x",
		EnvCrashAfter: "-1",
	}))
	if err == nil {
		t.Fatal("ConfigFromEnv: no error, want three")
	}
	for _, name := range []string{EnvErrorRate, EnvLatencyMS, EnvCrashAfter} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestConfigFromEnvSeed(t *testing.T) {
	a, _ := ConfigFromEnv(envOf(map[string]string{EnvSeed: "12"}))
	if a.Seed != 12 {
		t.Errorf("Seed %d, want 12", a.Seed)
	}
	b, _ := ConfigFromEnv(envOf(nil))
	time.Sleep(time.Microsecond)
	c, _ := ConfigFromEnv(envOf(nil))
	if b.Seed == c.Seed {
		t.Errorf("two unseeded configs share seed %d, want it taken from the clock", b.Seed)
	}
}

package demomodel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The environment variables the demo model reads. doc.go describes each.
const (
	EnvBindToPort        = "SAGEMAKER_BIND_TO_PORT"
	EnvPort              = "PORT"
	EnvModelDataURL      = "KILN_MODEL_DATA_URL"
	EnvInstanceID        = "KILN_INSTANCE_ID"
	EnvVersion           = "KILN_DEMO_VERSION"
	EnvErrorRate         = "KILN_DEMO_ERROR_RATE"
	EnvErrorStatus       = "KILN_DEMO_ERROR_STATUS"
	EnvLatencyMS         = "KILN_DEMO_LATENCY_MS"
	EnvLatencyJitterMS   = "KILN_DEMO_LATENCY_JITTER_MS"
	EnvNeverHealthy      = "KILN_DEMO_NEVER_HEALTHY"
	EnvStartupDelayMS    = "KILN_DEMO_STARTUP_DELAY_MS"
	EnvCrashAfter        = "KILN_DEMO_CRASH_AFTER"
	EnvStreamDelayMS     = "KILN_DEMO_STREAM_DELAY_MS"
	EnvSeed              = "KILN_DEMO_SEED"
	defaultPort          = 8080
	defaultVersion       = "v1"
	defaultErrorStatus   = 500
	maxDelay             = 24 * time.Hour
	maxVersionLen        = 128
	maxInstanceIDLen     = 256
	defaultShutdownGrace = 30 * time.Second
)

// Config is everything the demo model is told at start. The zero value serves
// the built-in model with no faults.
type Config struct {
	// Port is the loopback TCP port Main listens on. Zero lets the system
	// choose; the address is logged.
	Port int

	// ModelDataURL is where Main loads the model from before serving: a
	// file:// URL, a plain path, or an http(s):// URL. NewHandler does no
	// I/O and reads only Model.
	ModelDataURL string

	// Model is the model served. If nil, DefaultModel() is used.
	Model *Model

	// Version is reported as "model_version" and in X-Kiln-Demo-Version.
	// If empty, "v1" is used.
	Version string

	// InstanceID is reported as "instance" in every answer.
	InstanceID string

	// ErrorRate is the fraction, 0 to 1, of invocations answered with an
	// injected error. 1 fails every invocation.
	ErrorRate float64

	// ErrorStatus is the HTTP status of injected errors, 400 to 599. If
	// zero, 500 is used.
	ErrorStatus int

	// Latency is added to every invocation, plus a duration drawn uniformly
	// from [0, LatencyJitter].
	Latency       time.Duration
	LatencyJitter time.Duration

	// NeverHealthy makes /ping answer 503 forever; invocations are still
	// served.
	NeverHealthy bool

	// StartupDelay is how long Main waits before listening.
	StartupDelay time.Duration

	// CrashAfter, if positive, is the number of invocations answered before
	// the model crashes: the CrashAfter-th invocation is answered (with
	// Connection: close) and reported to OnCrash, and later invocations have
	// their connection dropped. Zero means never.
	CrashAfter int64

	// StreamDelay is the pause between server-sent events.
	StreamDelay time.Duration

	// Seed seeds the random source behind ErrorRate and LatencyJitter, so a
	// run can be replayed. ConfigFromEnv takes it from KILN_DEMO_SEED or,
	// when unset, from the clock.
	Seed uint64

	// Sleep waits for d or until ctx is done, returning ctx.Err() in the
	// latter case. It serves every delay (latency, stream pauses, startup).
	// If nil, a real timer is used.
	Sleep func(ctx context.Context, d time.Duration) error

	// OnCrash is called with the CrashAfter-th invocation when its handler
	// returns. If nil, the handler only drops later invocations; Main uses it
	// to stop serving once that answer has left.
	OnCrash func(r *http.Request)
}

// Validate reports every field that is out of range, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is out of range 0..65535", c.Port))
	}
	if c.Model != nil {
		if err := c.Model.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("model: %w", err))
		}
	}
	if err := checkHeaderValue(c.Version, maxVersionLen); err != nil {
		errs = append(errs, fmt.Errorf("version: %w", err))
	}
	if err := checkHeaderValue(c.InstanceID, maxInstanceIDLen); err != nil {
		errs = append(errs, fmt.Errorf("instance ID: %w", err))
	}
	if math.IsNaN(c.ErrorRate) || c.ErrorRate < 0 || c.ErrorRate > 1 {
		errs = append(errs, fmt.Errorf("error rate %v is out of range 0..1", c.ErrorRate))
	}
	if c.ErrorStatus != 0 && (c.ErrorStatus < 400 || c.ErrorStatus > 599) {
		errs = append(errs, fmt.Errorf("error status %d is out of range 400..599", c.ErrorStatus))
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"latency", c.Latency},
		{"latency jitter", c.LatencyJitter},
		{"startup delay", c.StartupDelay},
		{"stream delay", c.StreamDelay},
	} {
		if d.d < 0 || d.d > maxDelay {
			errs = append(errs, fmt.Errorf("%s %v is out of range 0..%v", d.name, d.d, maxDelay))
		}
	}
	if c.CrashAfter < 0 {
		errs = append(errs, fmt.Errorf("crash after %d invocations: must not be negative", c.CrashAfter))
	}
	return errors.Join(errs...)
}

// checkHeaderValue rejects what cannot travel in a response header.
func checkHeaderValue(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return fmt.Errorf("%q holds a character other than printable ASCII", s)
		}
	}
	return nil
}

func (c *Config) version() string {
	if c.Version == "" {
		return defaultVersion
	}
	return c.Version
}

func (c *Config) errorStatus() int {
	if c.ErrorStatus == 0 {
		return defaultErrorStatus
	}
	return c.ErrorStatus
}

// ConfigFromEnv reads the Config from environment variables through getenv
// (os.Getenv in production). Every malformed variable is reported, each error
// naming the variable; the result is validated.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	p := envParser{getenv: getenv}
	c := Config{
		Port:          defaultPort,
		ModelDataURL:  strings.TrimSpace(getenv(EnvModelDataURL)),
		Version:       getenv(EnvVersion),
		InstanceID:    getenv(EnvInstanceID),
		ErrorRate:     p.float(EnvErrorRate, 0, 1),
		ErrorStatus:   int(p.int(EnvErrorStatus, 400, 599)),
		Latency:       p.millis(EnvLatencyMS),
		LatencyJitter: p.millis(EnvLatencyJitterMS),
		NeverHealthy:  p.bool(EnvNeverHealthy),
		StartupDelay:  p.millis(EnvStartupDelayMS),
		CrashAfter:    p.int(EnvCrashAfter, 0, math.MaxInt64),
		StreamDelay:   p.millis(EnvStreamDelayMS),
	}
	switch {
	case getenv(EnvBindToPort) != "":
		c.Port = int(p.int(EnvBindToPort, 0, 65535))
	case getenv(EnvPort) != "":
		c.Port = int(p.int(EnvPort, 0, 65535))
	}
	if s := strings.TrimSpace(getenv(EnvSeed)); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			p.fail(EnvSeed, s, "must be an unsigned integer")
		}
		c.Seed = seed
	} else {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if err := checkHeaderValue(c.Version, maxVersionLen); err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %w", EnvVersion, err))
	}
	if err := checkHeaderValue(c.InstanceID, maxInstanceIDLen); err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %w", EnvInstanceID, err))
	}
	if len(p.errs) > 0 {
		return Config{}, errors.Join(p.errs...)
	}
	// The checks above name the variable at fault; Validate is the final
	// word on what a Config may hold.
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// envParser collects every malformed variable instead of stopping at the
// first, so one failed start shows all that needs fixing.
type envParser struct {
	getenv func(string) string
	errs   []error
}

func (p *envParser) fail(name, value, why string) {
	p.errs = append(p.errs, fmt.Errorf("%s=%q: %s", name, value, why))
}

func (p *envParser) get(name string) string { return strings.TrimSpace(p.getenv(name)) }

func (p *envParser) float(name string, lo, hi float64) float64 {
	s := p.get(name)
	if s == "" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < lo || f > hi {
		p.fail(name, s, fmt.Sprintf("must be a number from %v to %v", lo, hi))
		return 0
	}
	return f
}

func (p *envParser) int(name string, lo, hi int64) int64 {
	s := p.get(name)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		p.fail(name, s, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		return 0
	}
	return n
}

// millis reads a possibly fractional number of milliseconds.
func (p *envParser) millis(name string) time.Duration {
	s := p.get(name)
	if s == "" {
		return 0
	}
	maxMS := float64(maxDelay / time.Millisecond)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxMS {
		p.fail(name, s, fmt.Sprintf("must be a number of milliseconds from 0 to %v (%v)", maxMS, maxDelay))
		return 0
	}
	return time.Duration(f * float64(time.Millisecond))
}

func (p *envParser) bool(name string) bool {
	s := p.get(name)
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.fail(name, s, "must be 1, true, 0 or false")
		return false
	}
	return b
}

package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/server"
)

// runKiln runs kiln in this process with args, as main does, and returns
// its exit status, standard output and standard error.
func runKiln(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// startServer runs a real Kiln server in this process until the test ends.
func startServer(t *testing.T) string {
	t.Helper()
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), StopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("server.Close: %v", err)
		}
	})
	if err := srv.Run(context.Background()); err != nil {
		t.Fatalf("server.Run: %v", err)
	}
	return "http://" + srv.Addr()
}

// Mistakes in a command line exit with status 2 and say what is wrong, with
// the usage: an unknown subcommand with a suggestion, a missing argument by
// its name, a bad flag.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"alarms", "describ", "x"}, []string{`unknown command "describ" for "kiln alarms"`, "did you mean describe?", "Usage: kiln alarms COMMAND"}},
		{[]string{"alarms", "describe"}, []string{"alarms describe: missing NAME", "Usage: kiln alarms describe NAME"}},
		{[]string{"alarms", "set-state", "x"}, []string{"missing OK|ALARM|INSUFFICIENT_DATA"}},
		{[]string{"describe", "endpoint", "a", "b"}, []string{`too many arguments: ["b"]`, "Usage: kiln describe"}},
		{[]string{"statsu", "demo"}, []string{`unknown command "statsu" for "kiln"`, "did you mean status?"}},
		{[]string{"get", "--bogus"}, []string{"get: unknown flag: --bogus", "Usage: kiln get"}},
		{[]string{"store", "delet", "k"}, []string{`unknown command "delet"`, "did you mean delete?"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := runKiln(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit status %d, want %d (usage)\n%s", code, exitUsage, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("error lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
	// A parent alone still shows its help, and succeeds.
	if code, out, errOut := runKiln(t, "alarms"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("kiln alarms: exit status %d, output:\n%s%s", code, out, errOut)
	}
}

// With no server at --server, the error says how to name one.
func TestConnectionRefusedHint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	code, _, errOut := runKiln(t, "get", "endpoints", "--server", "http://"+addr)
	if code != exitGeneric {
		t.Errorf("exit status %d, want %d", code, exitGeneric)
	}
	for _, w := range []string{"connection refused", "--server", "KILN_SERVER", " serve`"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("error lacks %q:\n%s", w, errOut)
		}
	}
}

// Hints name kiln as it was run: go run's binary lives in Go's build cache.
func TestSelfCommand(t *testing.T) {
	tests := []struct{ arg0, exe, want string }{
		{"/tmp/go-build2831/b001/exe/kiln", "/tmp/go-build2831/b001/exe/kiln", "go run ./cmd/kiln"},
		{"kiln", "/home/u/.cache/go-build/3f/kiln", "go run ./cmd/kiln"},
		{"kiln", "/usr/local/bin/kiln", "kiln"},
		{"./kiln", "/home/u/src/kiln/kiln", "./kiln"},
		{"/opt/kiln/bin/kiln", "/opt/kiln/bin/kiln", "/opt/kiln/bin/kiln"},
		{"", "", "kiln"},
	}
	for _, tt := range tests {
		if got := selfCommandFor(tt.arg0, tt.exe); got != tt.want {
			t.Errorf("selfCommandFor(%q, %q) = %q, want %q", tt.arg0, tt.exe, got, tt.want)
		}
	}
}

// alarms put answers in the flags' names, not the API's fields.
func TestAlarmsPutErrorsNameFlags(t *testing.T) {
	url := startServer(t)
	tests := []struct {
		args       []string
		want, not_ string
	}{
		{[]string{"alarms", "put", "x", "--metric", "Foo"}, "--statistic is required", "ExtendedStatistic"},
		{[]string{"alarms", "put", "x", "--metric", "Foo", "--statistic", "Sum"}, "--comparison is required", "ComparisonOperator"},
		{[]string{"alarms", "put", "x", "--metric", "Foo", "--statistic", "Avg", "--comparison", "GreaterThanThreshold"}, `--statistic "Avg" is not one of`, "Statistic \"Avg\""},
		{[]string{"alarms", "put", "x", "--statistic", "Sum", "--comparison", "GreaterThanThreshold"}, "--metric is required", "MetricName"},
		{[]string{"alarms", "put", "x", "--metric", "Foo", "--statistic", "Sum", "--comparison", "Bigger"}, `--comparison "Bigger" is not one of GreaterThanOrEqualToThreshold`, "ComparisonOperator"},
		{[]string{"alarms", "put-judge", "j", "--endpoint", "demo", "--alpha", "0.9"}, "--alpha must be above 0", "Judge.Alpha"},
		{[]string{"alarms", "put-judge", "j", "--endpoint", "demo", "--min-requests", "-1"}, "--min-requests must be from 1", "Judge.MinRequests"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := runKiln(t, append(tt.args, "--server", url)...)
			if code == 0 {
				t.Fatalf("exit status 0 for an invalid alarm")
			}
			if !strings.Contains(errOut, tt.want) || strings.Contains(errOut, tt.not_) {
				t.Errorf("error %q: want %q in it and no %q", errOut, tt.want, tt.not_)
			}
		})
	}
}

// invoke's error body (JSON from the server) ends with a newline, so that
// the error line that follows starts on its own line.
func TestInvokeErrorEndsWithNewline(t *testing.T) {
	url := startServer(t)
	code, out, errOut := runKiln(t, "invoke", "missing", "--body", "{}", "--server", url)
	if code == 0 {
		t.Fatalf("invoke of a missing endpoint: exit status 0")
	}
	if !strings.HasPrefix(out, "{") || !strings.HasSuffix(out, "}\n") {
		t.Errorf("invoke's error body %q does not end with a newline", out)
	}
	if !strings.Contains(errOut, "kiln: the endpoint answered 4") {
		t.Errorf("stderr %q", errOut)
	}
}

// describe endpoint's tables start their headers where their rows start.
func TestDescribeEndpointAligned(t *testing.T) {
	var out bytes.Buffer
	c := &cli{out: &out, errOut: &out}
	ep := &kiln.Endpoint{EndpointName: "demo", EndpointStatus: kiln.StatusInService, EndpointConfigName: "demo-v1",
		Fleets: []kiln.Fleet{{ID: "AllTraffic-1", VariantName: "AllTraffic", EndpointConfigName: "demo-v1", ModelName: "demo-v1", InstanceCount: 2, ActiveInstanceCount: 2, TrafficShare: 1}}}
	insts := []kiln.InstanceInfo{{ID: "demo-AllTraffic-1-0-1", State: "Healthy", Routable: true, Addr: "127.0.0.1:1", PID: 4242}}
	printEndpoint(c, ep, insts)
	lines := strings.Split(out.String(), "\n")
	check := func(header, row string, cols ...string) {
		var h, r string
		for i, l := range lines {
			if strings.Contains(l, header) && i+1 < len(lines) {
				h, r = l, lines[i+1]
			}
		}
		if h == "" || !strings.Contains(r, row) {
			t.Fatalf("no %s table with a row %q:\n%s", header, row, out.String())
		}
		if strings.Index(h, header) != strings.Index(r, row) {
			t.Errorf("header %q starts at column %d, its rows at %d:\n%s\n%s", header, strings.Index(h, header), strings.Index(r, row), h, r)
		}
		for i := 0; i+1 < len(cols); i += 2 {
			if strings.Index(h, cols[i]) != strings.Index(r, cols[i+1]) {
				t.Errorf("column %s at %d, its value %s at %d:\n%s\n%s", cols[i], strings.Index(h, cols[i]), cols[i+1], strings.Index(r, cols[i+1]), h, r)
			}
		}
	}
	check("FLEET", "AllTraffic-1", "VARIANT", "AllTraffic ", "SHARE", "100.0%")
	check("INSTANCE", "demo-AllTraffic-1-0-1", "STATE", "Healthy", "PID", "4242")
}

// outcomeOf gives every way a deployment ends its documented exit status.
func TestOutcomeExitStatus(t *testing.T) {
	tests := []struct {
		phase, cause string
		want         int
	}{
		{kiln.PhaseCompleted, "", 0},
		{kiln.PhaseRolledBack, kiln.CauseAlarm, 3},
		{kiln.PhaseRolledBack, kiln.CauseOperator, 4},
		{kiln.PhaseRolledBack, kiln.CauseLaunchFailed, 5},
		{kiln.PhaseRolledBack, kiln.CauseTimeout, 6},
		{kiln.PhaseRolledBack, "", 5},
		{kiln.PhaseFailed, "", 5},
		{kiln.PhaseRollbackFailed, kiln.CauseAlarm, 5},
	}
	for _, tt := range tests {
		if got := outcomeOf(kiln.HistoryEvent{Phase: tt.phase, Cause: tt.cause}).code; got != tt.want {
			t.Errorf("%s (cause %q): exit status %d, want %d", tt.phase, tt.cause, got, tt.want)
		}
	}
}

// A resource the server refuses during apply is named with the server's
// message: the context the command adds is printed, not dropped.
func TestApplyRefusalNamesResource(t *testing.T) {
	url := startServer(t)
	file := t.TempDir() + "/bad.yaml"
	data := "endpointConfigs:\n  - EndpointConfigName: orphan\n    ProductionVariants:\n      - {VariantName: AllTraffic, ModelName: nowhere, InitialInstanceCount: 1}\n"
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runKiln(t, "apply", "-f", file, "--server", url)
	if code == 0 || !strings.Contains(errOut, "kiln: endpoint config orphan: ") || !strings.Contains(errOut, "nowhere") {
		t.Errorf("apply of a config of a missing model: exit status %d, error %q; want it to name endpoint config orphan and the model", code, errOut)
	}
}

package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kiln-serve/kiln"
	"github.com/kiln-serve/kiln/internal/api/client"
	"github.com/kiln-serve/kiln/internal/server"
)

// TestServeAndClose runs Kiln on :0 with its store in a temporary
// directory: Run returns once it listens, at the address Addr reports; its
// API, its gateway and an instance of a real model answer; Close stops every
// goroutine and the instance's process; and on the same directory a new
// Kiln finds the endpoint again.
func TestServeAndClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	dir := t.TempDir()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()

	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: dir, StopTimeout: 5 * time.Second, PingInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(ctx); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			srv.Close()
		}
	}()
	if _, port, _ := net.SplitHostPort(srv.Addr()); port == "0" || port == "" {
		t.Fatalf("Addr() = %q, want the port bound", srv.Addr())
	}
	base := "http://" + srv.Addr()
	c := &client.Client{BaseURL: base, HTTP: hc}

	if _, err := c.CreateModel(ctx, &kiln.Model{ModelName: "m", PrimaryContainer: &kiln.ContainerDef{
		Image: os.Args[0], Environment: map[string]string{modelEnv: "1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateEndpointConfig(ctx, &kiln.EndpointConfig{EndpointConfigName: "c", ProductionVariants: []kiln.ProductionVariant{
		{VariantName: "AllTraffic", ModelName: "m", InitialInstanceCount: 1, InstanceType: "ml.m5.large"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateEndpoint(ctx, kiln.CreateEndpointInput{EndpointName: "ep", EndpointConfigName: "c"}); err != nil {
		t.Fatal(err)
	}
	// A bound on the wait, so that a broken server fails rather than hangs.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ep, err := c.GetEndpoint(ctx, "ep")
		if err == nil && ep.EndpointStatus == kiln.StatusInService {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint not InService: %+v, %v", ep, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	resp, err := hc.Post(base+"/endpoints/ep/invocations", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"ok":true}` {
		t.Errorf("invocation: %d %s, want 200 {\"ok\":true}", resp.StatusCode, body)
	}
	ins, err := c.EndpointInstances(ctx, "ep")
	if err != nil || len(ins) != 1 || !ins[0].Routable || ins[0].PID == 0 || ins[0].VariantName != "AllTraffic" {
		t.Fatalf("EndpointInstances = %+v, %v; want one routable instance of AllTraffic", ins, err)
	}
	pid := ins[0].PID

	// The service reads Kiln's own metrics (the invocation's, once its
	// second has ended) and keeps published ones.
	for {
		ms, err := c.ListMetrics(ctx, "AWS/SageMaker", "Invocations", []kiln.Dimension{{Name: "EndpointName", Value: "ep"}})
		if err == nil && len(ms) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListMetrics of the endpoint's invocations = %v, %v; want its series", ms, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	one := 1.0
	if err := c.PutMetricData(ctx, "Mine", []kiln.MetricDatum{{MetricName: "Queue", Value: &one}}); err != nil {
		t.Fatal(err)
	}
	if ms, err := c.ListMetrics(ctx, "Mine", "", nil); err != nil || len(ms) != 1 || ms[0].MetricName != "Queue" {
		t.Errorf("ListMetrics of published metrics = %v, %v; want Queue", ms, err)
	}

	closed = true
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("instance process %d after Close: kill 0 = %v, want ESRCH", pid, err)
	}
	hc.CloseIdleConnections()

	// The store is closed and released: a new Kiln opens it and finds the
	// endpoint.
	again, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: dir, StopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Run(ctx); err != nil {
		again.Close()
		t.Fatal(err)
	}
	if _, err := again.Service().GetEndpoint(ctx, "ep"); err != nil {
		t.Errorf("endpoint after a restart: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestRunFailsToListen: a Run that cannot listen says so, starts nothing,
// and Close releases the store.
func TestRunFailsToListen(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	srv, err := server.New(server.Config{Addr: ln.Addr().String(), DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listen on "+ln.Addr().String()) {
		t.Errorf("Run on a taken address: %v, want a listen error", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	again, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatalf("New on the released directory: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Errorf("Close without Run: %v", err)
	}
}

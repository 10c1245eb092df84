package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

const body = `{"instances": [[1, 2, 3, 4]]}`

// The walking skeleton, as a new user tries it: apply an endpoint of two
// demo-model instances, invoke it 1,000 times over both, kill -9 one
// instance under load, restart Kiln, and find the endpoint serving again.
func TestEndpointLifecycle(t *testing.T) {
	p := startKiln(t, "")
	out := p.applyYAML(demoYAML("life", 2))
	if !strings.Contains(out, "endpoint/life created") {
		t.Fatalf("apply said:\n%s", out)
	}
	p.waitInService("life", 30*time.Second)

	// Applying the same file again changes nothing.
	out = p.applyYAML(demoYAML("life", 2))
	if strings.Contains(out, "created") || !strings.Contains(out, "endpoint/life unchanged") {
		t.Fatalf("second apply said:\n%s", out)
	}

	perInstance := map[string]int{}
	for i := 0; i < 1000; i++ {
		r, err := p.invoke("life", body)
		if err != nil || r.status != 200 {
			t.Fatalf("invocation %d: %v %d %s", i, err, r.status, r.body)
		}
		if r.variant != "AllTraffic" {
			t.Fatalf("X-Amzn-Invoked-Production-Variant = %q, want AllTraffic", r.variant)
		}
		perInstance[r.instance]++
	}
	if len(perInstance) != 2 {
		t.Fatalf("1000 invocations went to %d instances, want 2: %v", len(perInstance), perInstance)
	}
	for id, n := range perInstance {
		if n < 200 {
			t.Errorf("instance %s got %d of 1000 invocations; want them spread", id, n)
		}
	}

	// kill -9 one instance under continuous load.
	insts, err := p.client.EndpointInstances(context.Background(), "life")
	if err != nil || len(insts) != 2 {
		t.Fatalf("instances: %v %v", insts, err)
	}
	victim := insts[0]
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := p.invoke("life", body)
				if err != nil || r.status != 200 {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill instance: %v", err)
	}
	waitFor(t, 30*time.Second, "a replacement instance", func() bool {
		insts, err := p.client.EndpointInstances(context.Background(), "life")
		if err != nil {
			return false
		}
		healthy := 0
		for _, in := range insts {
			if in.Routable && in.PID != victim.PID {
				healthy++
			}
		}
		return healthy == 2
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	// At most the requests in flight on the killed instance may fail.
	if f := failed.Load(); f > 4 {
		t.Errorf("%d invocations failed around the instance kill (of %d); want at most those in flight (4)", f, ok.Load()+f)
	}
	t.Logf("around the kill: %d succeeded, %d failed", ok.Load(), failed.Load())

	// The log of the instances is readable.
	if logs := p.mustCLI("logs", "life"); !strings.Contains(logs, "==> ") {
		t.Errorf("kiln logs printed no instance log:\n%s", logs)
	}

	// Restart Kiln: the endpoint serves again with no command, and no
	// instance of the first run is left behind.
	insts, _ = p.client.EndpointInstances(context.Background(), "life")
	p.stop()
	for _, in := range insts {
		if processAlive(in.PID) {
			t.Errorf("instance %s (pid %d) still runs after kiln stopped", in.ID, in.PID)
		}
	}
	// Invocations sent as soon as Kiln listens again wait for the
	// instances to start, and are answered: none is refused.
	p2 := startKiln(t, p.dataDir)
	var afterRestart sync.WaitGroup
	for i := range 4 {
		afterRestart.Go(func() {
			if r, err := p2.invoke("life", body); err != nil || r.status != 200 {
				t.Errorf("invocation %d right after the restart: %v %d %s", i, err, r.status, r.body)
			}
		})
	}
	afterRestart.Wait()
	p2.waitInService("life", 30*time.Second)

	// kill -9 of Kiln leaves no instance process behind.
	insts, _ = p2.client.EndpointInstances(context.Background(), "life")
	p2.kill()
	waitFor(t, 5*time.Second, "instances to die with kiln", func() bool {
		for _, in := range insts {
			if processAlive(in.PID) {
				return false
			}
		}
		return true
	})
}

// Bad input gets a 4xx naming the problem, and nothing is written.
func TestBadInput(t *testing.T) {
	p := startKiln(t, "")
	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"malformed JSON", "POST", "/v1/models", `{"ModelName": "a",`, 400, "truncated"},
		{"unknown field", "POST", "/v1/models", `{"ModelName": "a", "Colour": 1}`, 400, "Colour"},
		{"bad name", "POST", "/v1/models", `{"ModelName": "-bad-", "PrimaryContainer": {"Image": "x"}}`, 400, "ModelName"},
		{"no image", "POST", "/v1/models", `{"ModelName": "m"}`, 400, "PrimaryContainer"},
		{"wrong type", "POST", "/v1/models", `{"ModelName": 5}`, 400, "ModelName"},
		{"too many variants", "POST", "/v1/endpoint-configs", `{"EndpointConfigName": "c", "ProductionVariants": []}`, 400, "ProductionVariants"},
		{"zero instances", "POST", "/v1/endpoint-configs", `{"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 0}]}`, 400, "InitialInstanceCount"},
		{"missing model", "POST", "/v1/endpoint-configs", `{"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "v", "ModelName": "nope", "InitialInstanceCount": 1}]}`, 404, "nope"},
		{"missing config", "POST", "/v1/endpoints", `{"EndpointName": "e", "EndpointConfigName": "nope"}`, 404, "nope"},
		{"unknown endpoint", "GET", "/v1/endpoints/nope", ``, 404, "nope"},
		{"unknown route", "GET", "/v1/nothing", ``, 404, "No such API"},
		{"trailing data", "POST", "/v1/models", `{"ModelName": "a"} {}`, 400, "after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, p.url+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb struct{ Code, Message string }
			json.NewDecoder(resp.Body).Decode(&eb)
			if resp.StatusCode != tc.status || !strings.Contains(eb.Message, tc.want) {
				t.Errorf("got %d %q, want %d with %q", resp.StatusCode, eb.Message, tc.status, tc.want)
			}
		})
	}
	// Nothing was written.
	for _, path := range []string{"/v1/models", "/v1/endpoint-configs", "/v1/endpoints"} {
		resp, err := http.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		var list []json.RawMessage
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if len(list) != 0 {
			t.Errorf("%s has %d records after bad requests, want 0", path, len(list))
		}
	}
	// Unknown endpoint on the data plane is SageMaker's ValidationError.
	r, err := p.invoke("nope", body)
	if err != nil || r.status != 400 || !strings.Contains(r.body, "ValidationError") {
		t.Errorf("invoke unknown endpoint: %d %s %v", r.status, r.body, err)
	}
	_ = kiln.EINVALID
}

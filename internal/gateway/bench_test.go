package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// benchRoutes is an endpoint mid-deployment: two variants, each with a blue
// and a green fleet of perFleet instances.
func benchRoutes(perFleet int) []EndpointRoute {
	ins := func(prefix string) []InstanceRoute {
		var out []InstanceRoute
		for i := range perFleet {
			out = append(out, InstanceRoute{ID: fmt.Sprintf("%s-%d", prefix, i), Addr: fmt.Sprintf("127.0.0.1:%d", 10000+i)})
		}
		return out
	}
	var variants []VariantRoute
	for _, v := range []string{"A", "B"} {
		variants = append(variants, VariantRoute{Name: v, Weight: 1, Fleets: []FleetRoute{
			{ID: v + "-blue", Share: 0.75, Instances: ins(v + "-blue")},
			{ID: v + "-green", Share: 0.25, Instances: ins(v + "-green")},
		}})
	}
	return []EndpointRoute{{Name: "other"}, {Name: "ep", Variants: variants}}
}

// BenchmarkPick measures the routing decision: path parsing, table lookup,
// variant, fleet, instance, and the in-flight count taken and given back.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{1, 4, 32} {
		g := New(Config{})
		defer g.Close()
		g.Update(benchRoutes(n))
		path := "/endpoints/ep/invocations"
		pick := func() {
			name, _ := endpointFromPath(path)
			_, _, in := g.acquire(name, "", nil)
			if in == nil {
				b.Fatal("no instance")
			}
			in.release()
		}
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pick()
			}
		})
		b.Run(fmt.Sprintf("instances=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					pick()
				}
			})
		})
	}
}

// BenchmarkProxy measures a whole invocation through real loopback sockets:
// client → gateway server → model server and back, keep-alive on both hops.
func BenchmarkProxy(b *testing.B) {
	payload := []byte(`{"instances": [[0.5, 1, 2, 0]]}`)
	answer := []byte(`{"predictions": [{"score": 0.73, "label": "pos"}]}`)
	m := newModel(b, "m", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	f := newFront(b, Config{})
	f.Update([]EndpointRoute{oneVariant("ep", nil, m.route("m1"))})
	url := f.srv.URL + "/endpoints/ep/invocations"

	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", par), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
					req.Header.Set("Content-Type", "application/json")
					res, err := f.client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Fatalf("status %d", res.StatusCode)
					}
				}
			})
		})
	}
}

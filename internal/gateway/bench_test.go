package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kiln-serve/kiln/internal/api"
	"github.com/kiln-serve/kiln/internal/clock"
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
// client → gateway server → model server and back, keep-alive on both hops,
// on the fast path and with NetHTTPOnly. The client and the model run in the
// same process, so the figures include their costs too.
func BenchmarkProxy(b *testing.B) {
	payload := []byte(`{"instances": [[0.5, 1, 2, 0]]}`)
	answer := []byte(`{"predictions": [{"score": 0.73, "label": "pos"}]}`)
	m := newModel(b, "m", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	for _, path := range []string{"fast", "nethttp"} {
		f := newFront(b, Config{NetHTTPOnly: path == "nethttp"})
		f.Update([]EndpointRoute{oneVariant("ep", discard{}, m.route("m1"))})
		url := f.srv.URL + "/endpoints/ep/invocations"
		for _, par := range []int{1, 16} {
			b.Run(fmt.Sprintf("path=%s/clients=%d", path, par), func(b *testing.B) {
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
}

// BenchmarkIdleConn measures the memory an idle keep-alive client
// connection holds in the gateway: each iteration opens a connection, sends
// one invocation on it, reads the answer and keeps the connection open. The
// Go heap and stacks in use after a GC, less those before, per connection,
// is reported as B/conn, and again, as B/parked-conn, once the fast path's
// connections have parked; the kernel's socket buffers are not counted. The
// clients are bare sockets, so nearly all of it is the gateway's (and
// net/http's, whose server accepts every connection first).
func BenchmarkIdleConn(b *testing.B) {
	m := newModel(b, "m", nil)
	for _, path := range []string{"fast", "nethttp"} {
		b.Run("path="+path, func(b *testing.B) {
			f := newFront(b, Config{NetHTTPOnly: path == "nethttp"})
			f.Update([]EndpointRoute{oneVariant("ep", discard{}, m.route("m1"))})
			addr := strings.TrimPrefix(f.srv.URL, "http://")
			req := []byte("POST /endpoints/ep/invocations HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
			conns := make([]net.Conn, 0, b.N)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			before := memInUse()
			b.ResetTimer()
			for range b.N {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				conns = append(conns, c)
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				if res.StatusCode != http.StatusOK {
					b.Fatalf("status %d", res.StatusCode)
				}
			}
			b.StopTimer()
			// Let the gateway's goroutines settle into their wait for the
			// next request; then wait for the fast path's connections to
			// park.
			time.Sleep(200 * time.Millisecond)
			b.ReportMetric(float64(memInUse()-before)/float64(b.N), "B/conn")
			time.Sleep(parkAfter + 500*time.Millisecond)
			b.ReportMetric(float64(memInUse()-before)/float64(b.N), "B/parked-conn")
		})
	}
}

// memInUse is the Go heap and stack memory in use after a full GC.
func memInUse() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

// discard is a Recorder that keeps nothing.
type discard struct{}

func (discard) Record(Sample) {}

// BenchmarkFastPathGateway measures the gateway's own work per invocation
// on the fast path, without the client's and the model's: a request is
// parsed from a buffer, routed, sent to a model connection and answered
// from a canned response, all in memory. It should not allocate.
func BenchmarkFastPathGateway(b *testing.B) {
	benchFastPath(b, Config{}, "")
}

// BenchmarkFastPathAuth is BenchmarkFastPathGateway with kiln serve's
// --invoke-auth check (api.Auth) on every request: a token from `kiln
// token`, and a SigV4 signature made by the AWS SDK's signer.
func BenchmarkFastPathAuth(b *testing.B) {
	const id, secret = "KILNBENCH", "bench-secret-0123456789"
	creds, err := api.LoadCredentials("", func(k string) string {
		return map[string]string{"KILN_ACCESS_KEY_ID": id, "KILN_SECRET_ACCESS_KEY": secret}[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake()
	clk.Advance(at.Sub(clk.Now()))
	auth := &api.Auth{Creds: creds, Clock: clk}
	cfg := Config{Authorize: func(r *http.Request) *Refusal {
		if _, err := auth.Authenticate(r); err != nil {
			return &Refusal{Status: http.StatusForbidden, Code: err.RuntimeCode(), Message: err.Message}
		}
		return nil
	}}
	tok, err := auth.MintToken(id, api.RoleInvoke, at.Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("token", func(b *testing.B) {
		benchFastPath(b, cfg, "Authorization: Bearer "+tok+"\r\n")
	})
	b.Run("sigv4", func(b *testing.B) {
		req, _ := http.NewRequest(http.MethodPost, "http://kiln/endpoints/ep/invocations", bytes.NewReader([]byte(benchPayload)))
		req.Header.Set("Content-Type", "application/json")
		sum := sha256.Sum256([]byte(benchPayload))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), "sagemaker", "us-east-1", at)
		if err != nil {
			b.Fatal(err)
		}
		var h strings.Builder
		for _, k := range []string{"Authorization", "X-Amz-Date"} {
			h.WriteString(k + ": " + req.Header.Get(k) + "\r\n")
		}
		benchFastPath(b, cfg, h.String())
	})
}

const benchPayload = `{"instances": [[0.5, 1, 2, 0]]}`

func benchFastPath(b *testing.B, cfg Config, header string) {
	cfg.Rand = seeded(1)
	g := New(cfg)
	defer g.Close()
	g.Update([]EndpointRoute{oneVariant("ep", discard{}, InstanceRoute{ID: "m1", Addr: "model"})})
	in := g.instances["m1"]
	req := []byte(invocation("ep", "Content-Type: application/json\r\n"+header, benchPayload))
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 49\r\n\r\n" +
		`{"predictions": [{"score": 0.73, "label": "pos"}]}`[:49])

	client := &memConn{}
	c := newFastConn(g, client, client)
	up := &memConn{}
	in.putConn(&upstreamConn{conn: up, br: bufio.NewReaderSize(up, upstreamBufSize)})
	b.ReportAllocs()
	for b.Loop() {
		client.in.Write(req)
		up.in.Write(answer)
		if c.next() != nextKeep {
			b.Fatalf("connection not kept; the client got %q", client.out.Bytes())
		}
		if up.out.Len() == 0 {
			b.Fatalf("nothing sent to the model; the client got %q", client.out.Bytes())
		}
		c.bw.Flush()
		client.out.Reset()
		up.out.Reset()
	}
}

// memConn is a net.Conn that reads from in and writes to out.
type memConn struct {
	net.Conn
	in, out bytes.Buffer
}

func (m *memConn) Read(p []byte) (int, error)      { return m.in.Read(p) }
func (m *memConn) Write(p []byte) (int, error)     { return m.out.Write(p) }
func (m *memConn) SetReadDeadline(time.Time) error { return nil }
func (m *memConn) SetDeadline(time.Time) error     { return nil }
func (m *memConn) Close() error                    { return nil }
func (m *memConn) RemoteAddr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }

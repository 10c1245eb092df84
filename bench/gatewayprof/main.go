// Command gatewayprof serves Kiln's gateway alone, with the metrics store
// recording every request as the server does, and net/http/pprof on a second
// address: a target to profile under wrk without the rest of Kiln.
//
//	gatewayprof -addr 127.0.0.1:19183 -pprof 127.0.0.1:6060 -models 127.0.0.1:19101,127.0.0.1:19102
//
// The endpoint is "bench", with variants Blue (weight 0.9, the first model)
// and Green (0.1, the second), as in bench/gateway.sh.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	_ "net/http/pprof"
	"strings"

	"github.com/kiln-serve/kiln/internal/clock"
	"github.com/kiln-serve/kiln/internal/gateway"
	"github.com/kiln-serve/kiln/internal/metrics"
)

// recorder is the server's adapter from gateway samples to a series.
type recorder struct{ s *metrics.Series }

func (r recorder) Record(s gateway.Sample) {
	status := s.Status
	if s.ModelStatus != 0 {
		status = s.ModelStatus
	}
	r.s.Record(metrics.Sample{Status: status, ModelError: s.ModelError,
		ModelLatency: s.ModelLatency, OverheadLatency: s.OverheadLatency,
		Instances: s.Instances})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:19183", "gateway address")
	pprofAddr := flag.String("pprof", "127.0.0.1:6060", "pprof address")
	models := flag.String("models", "127.0.0.1:19101,127.0.0.1:19102", "two model addresses")
	flag.Parse()
	m := strings.Split(*models, ",")
	if len(m) != 2 {
		log.Fatal("want two model addresses")
	}
	clk := clock.Real()
	st := metrics.New(clk, nil)
	g := gateway.New(gateway.Config{Clock: clk})
	var variants []gateway.VariantRoute
	for i, v := range []string{"Blue", "Green"} {
		variants = append(variants, gateway.VariantRoute{Name: v, Weight: []float64{0.9, 0.1}[i],
			Fleets: []gateway.FleetRoute{{ID: v, Config: "bench", Share: 1,
				Instances: []gateway.InstanceRoute{{ID: fmt.Sprint(i), Addr: m[i]}},
				Recorder:  recorder{st.Series("bench", v, "bench")}}}})
	}
	g.Update([]gateway.EndpointRoute{{Name: "bench", Variants: variants}})
	go func() { log.Println(http.ListenAndServe(*pprofAddr, nil)) }()
	mux := http.NewServeMux()
	mux.Handle("/endpoints/", g)
	log.Fatal(http.ListenAndServe(*addr, mux))
}

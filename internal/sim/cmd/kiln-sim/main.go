// Command kiln-sim simulates deployments of a regressed model with each way
// of deciding rollbacks (the judge, threshold alarms on 1-minute and
// 1-second periods) and prints the tables of docs/judge.md.
//
//	go run ./internal/sim/cmd/kiln-sim
//
// The simulation is deterministic: the same flags print the same tables.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kiln-serve/kiln/internal/sim"
)

func main() {
	p := sim.DefaultPlan
	flag.IntVar(&p.AA, "aa", p.AA, "A/A deployments per traffic level below 1000 req/s")
	flag.IntVar(&p.AAFast, "aa-fast", p.AAFast, "A/A deployments at 1000 req/s")
	flag.IntVar(&p.Regressed, "runs", p.Regressed, "deployments per regression and traffic level")
	flag.Uint64Var(&p.Seed, "seed", 0, "seed offset")
	flag.IntVar(&p.Workers, "workers", 0, "deployments simulated at once (default GOMAXPROCS)")
	quiet := flag.Bool("q", false, "no progress on stderr")
	flag.Parse()

	methods := sim.Methods()
	progress := os.Stderr
	if *quiet {
		progress = nil
	}
	cells, err := sim.Experiment(p, methods, progress)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kiln-sim:", err)
		os.Exit(1)
	}
	sim.WriteTables(os.Stdout, cells, methods)
}

// peer_go: the Go peer of `spindle micro` (bench/peers.c runs it).
//
// It prints the ROW/SKIP lines of bench/bench.h for two benchmarks, each
// at GOMAXPROCS=1 (impl go/1p) and GOMAXPROCS=2 (go/2p):
//
//	chan_pingpong  ns per message between two goroutines over unbuffered
//	               channels (ping and pong; a round trip is two messages)
//	skynet         ms for the tree of 1,000,000 goroutines summed through
//	               channels
//
// Each figure is the median of SPINDLE_BENCH_RUNS runs (default 5), with
// its min and max, after a warm-up, as the C peers do (bench/peers/peer.h).
//
// CPUs: go/1p runs with every thread of the process pinned to one CPU, as
// spindle's single-worker rows are; go/2p gets the CPUs the process was
// started with, and is skipped when that is fewer than two.  The pinning
// is done here (sched_setaffinity on each thread) because GOMAXPROCS alone
// leaves the one running thread free to migrate.
//
// Standard library only: it builds offline (bench/peers/CMakeLists.txt).
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
)

// Rows a run prints; bench/peers.c lists the same ones for peer_go.
var procs = []int{1, 2}

func runs() int {
	n := 5
	if e := os.Getenv("SPINDLE_BENCH_RUNS"); e != "" {
		if v, err := strconv.Atoi(e); err == nil {
			n = v
		}
	}
	// bench_runs() clamps the same way (1..BENCH_MAX_RUNS).
	if n < 1 {
		n = 1
	}
	if n > 64 {
		n = 64
	}
	return n
}

// row prints the median, min and max of samples as a ROW line.
func row(bench, impl, unit string, samples []float64, n int64) {
	sort.Float64s(samples)
	k := len(samples)
	med := samples[k/2]
	if k%2 == 0 {
		med = (samples[k/2-1] + samples[k/2]) / 2
	}
	fmt.Printf("ROW %s %s %s %.9g %.9g %.9g %d %d\n", bench, impl, unit, med,
		samples[0], samples[k-1], k, n)
}

func skip(bench, impl, why string) {
	fmt.Printf("SKIP %s %s %s\n", bench, impl, why)
}

type benchFn func(impl string, runs int)

var benches = []struct {
	name string
	fn   benchFn
}{
	{"chan_pingpong", benchPingpong},
	{"skynet", benchSkynet},
}

func main() {
	only := ""
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		if args[i] == "--bench" && i+1 < len(args) && only == "" {
			only = args[i+1]
			i++
			continue
		}
		fmt.Fprintf(os.Stderr, "%s: unexpected argument '%s'\nusage: %s [--bench NAME]\n",
			os.Args[0], args[i], os.Args[0])
		os.Exit(2)
	}
	start, err := affinityGet()
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer_go: sched_getaffinity: %v\n", err)
	}
	for _, b := range benches {
		if only != "" && only != b.name {
			continue
		}
		for _, p := range procs {
			impl := fmt.Sprintf("go/%dp", p)
			if why := placeFor(p, start, err); why != "" {
				skip(b.name, impl, why)
				continue
			}
			runtime.GOMAXPROCS(p)
			b.fn(impl, runs())
		}
	}
}

// placeFor sets the CPUs the process runs on for GOMAXPROCS=p; it returns
// why the row cannot be measured, or "".
func placeFor(p int, start cpuMask, startErr error) string {
	if startErr != nil {
		return "cannot read the CPU affinity: " + startErr.Error()
	}
	cpus := start.cpus()
	if len(cpus) < p {
		return fmt.Sprintf("needs %d CPUs; this process may use %d", p, len(cpus))
	}
	m := start
	if p == 1 {
		m = cpuMask{}
		m.set(cpus[0])
	}
	if err := affinitySetAll(m); err != nil {
		return "cannot set the CPU affinity: " + err.Error()
	}
	return ""
}

package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// The classic skynet: each goroutine of the tree starts ten children and
// sums what they send back over one unbuffered channel; the million
// leaves send their own numbers.
const (
	skynetLeaves = 1000000
	skynetDiv    = 10
	skynetSum    = int64(skynetLeaves) * (skynetLeaves - 1) / 2
)

func skynet(out chan<- int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	rc := make(chan int64)
	step := size / skynetDiv
	for i := int64(0); i < skynetDiv; i++ {
		go skynet(rc, num+i*step, step)
	}
	var sum int64
	for i := 0; i < skynetDiv; i++ {
		sum += <-rc
	}
	out <- sum
}

func skynetOnce() time.Duration {
	c := make(chan int64)
	t0 := time.Now()
	go skynet(c, 0, skynetLeaves)
	sum := <-c
	el := time.Since(t0)
	if sum != skynetSum {
		fmt.Fprintf(os.Stderr, "peer_go: skynet summed %d, expected %d\n", sum, skynetSum)
		os.Exit(1)
	}
	return el
}

func benchSkynet(impl string, runs int) {
	skynetOnce() // warm-up: grows the heap and the goroutine free lists
	samples := make([]float64, runs)
	for i := range samples {
		// Each run starts from a collected heap, as each spindle run starts
		// on a fresh thread.
		runtime.GC()
		samples[i] = float64(skynetOnce().Nanoseconds()) / 1e6
	}
	row("skynet", impl, "ms", samples, skynetLeaves)
}

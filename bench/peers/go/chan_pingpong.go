package main

import "time"

// pingpong passes msgs messages (msgs/2 round trips) between this goroutine
// and an echoing one over two unbuffered channels; returns the elapsed time.
func pingpong(msgs int64) time.Duration {
	ping, pong := make(chan int64), make(chan int64)
	done := make(chan struct{})
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(done)
	}()
	t0 := time.Now()
	for i := int64(0); i < msgs/2; i++ {
		ping <- i
		if <-pong != i+1 {
			panic("chan_pingpong: wrong echo")
		}
	}
	el := time.Since(t0)
	close(ping)
	<-done
	return el
}

// The calibration of bench/peers/peer.h: double from 256 messages until a
// pass takes 10 ms (the warm-up), then scale to about 0.1 s a run.
const (
	calibrateNs = 1e7
	targetNs    = 1e8
)

func benchPingpong(impl string, runs int) {
	msgs := int64(256)
	var t time.Duration
	for t = pingpong(msgs); float64(t.Nanoseconds()) < calibrateNs; t = pingpong(msgs) {
		msgs *= 2
	}
	msgs = int64(float64(msgs)*targetNs/float64(t.Nanoseconds())) &^ 1
	if msgs < 2 {
		msgs = 2
	}
	samples := make([]float64, runs)
	for i := range samples {
		samples[i] = float64(pingpong(msgs).Nanoseconds()) / float64(msgs)
	}
	row("chan_pingpong", impl, "ns/msg", samples, 0)
}

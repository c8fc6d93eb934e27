// Command open_loop_driver sends HTTP/1.1 GET requests at a fixed rate (open loop) and records,
// for each, when it went out and when its answer came back, counted from its scheduled time.
//
// bench/api_open_loop.py builds and runs it (--driver open-loop). It does what vegeta's constant
// pacer does with a fraction of the CPU, which it shares with the server on a 2-core machine:
// one thread and one epoll loop (loop.go), so a request costs a write, a read and a share of
// the loop's wake-ups, where goroutines per connection cost a dozen thread hand-offs each.
//
// Request k is due at t0 + (k+1)/rate whatever the answers do (a timerfd wakes the loop at
// each due time); at most -connections keep-alive connections, dialled before t0, carry them;
// a request that waits because every connection is busy keeps its due time, so its wait counts
// as latency (no coordinated omission). Requests still queued -drain after the last one was due
// are written as never sent (status -1), never dropped.
//
// Input: vegeta's JSON targets (one {"method","url","header"} per line, GET only), so both
// drivers replay one file and the API key travels in it (never on a command line).
// Output (-output): one line per request in schedule order, "seq due_ns sent_ns latency_ns
// status", times in ns after t0 (latency from the send to the answer's last byte); status 0 is
// a transport error or timeout, -1 never sent.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

type result struct {
	sent    int64 // ns after t0
	latency int64 // ns from sent to the answer's last byte
	status  int32
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	targets := flag.String("targets", "", "vegeta JSON targets file (requests are taken in order, wrapping around)")
	output := flag.String("output", "", "results file")
	rate := flag.Int("rate", 0, "requests per second")
	duration := flag.Duration("duration", 0, "how long to schedule requests for")
	connections := flag.Int("connections", 64, "keep-alive connections at most")
	timeout := flag.Duration("timeout", 5*time.Second, "for each request")
	drain := flag.Duration("drain", 30*time.Second, "after the last request was due, how long queued requests may still be sent")
	flag.Parse()
	count := int(int64(*rate) * int64(*duration) / int64(time.Second))
	if *targets == "" || *output == "" || *rate <= 0 || count <= 0 || *connections <= 0 || *timeout <= 0 || *drain < 0 {
		fmt.Fprintln(os.Stderr, "usage: open_loop_driver -targets FILE -output FILE -rate N -duration D [-connections N] [-timeout D] [-drain D]")
		os.Exit(2)
	}
	addr, requests, err := readTargets(*targets)
	if err != nil {
		fail(err)
	}
	// One thread does everything: the Go scheduler has nothing to hand over.
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	l := &loop{
		requests: requests,
		results:  make([]result, count),
		rate:     int64(*rate),
		timeout:  int64(*timeout),
		drain:    int64(*drain),
	}
	if err := l.open(addr, *connections); err != nil {
		fail(err)
	}
	if err := l.run(); err != nil {
		fail(err)
	}

	f, err := os.Create(*output)
	if err != nil {
		fail(err)
	}
	out := bufio.NewWriter(f)
	for k, r := range l.results {
		fmt.Fprintf(out, "%d %d %d %d %d\n", k, l.due(k), r.sent, r.latency, r.status)
	}
	if err := out.Flush(); err != nil {
		fail(err)
	}
	if err := f.Close(); err != nil {
		fail(err)
	}
}

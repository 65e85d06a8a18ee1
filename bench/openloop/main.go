// openloop sends POST requests at a fixed rate, whatever the server's pace, and measures each latency from
// the time the request was scheduled (not from when it could be sent): a slow server cannot hide its queue
// the way it does under a closed-loop client such as wrk (coordinated omission).
//
// Usage: openloop -url https://127.0.0.1:PORT/mutate-pods -ca ca.crt -body review.json -rate 500 -duration 10s
// Prints one JSON object: offered and achieved rate, counts, errors, latency percentiles in milliseconds.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

type result struct {
	Rate     float64            `json:"offered_rps"`
	Achieved float64            `json:"achieved_rps"`
	Sent     int                `json:"sent"`
	OK       int                `json:"ok"`
	Errors   map[string]int     `json:"errors"`
	Millis   map[string]float64 `json:"latency_ms"`
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := q / 100 * float64(len(sorted)-1)
	lo := int(rank)
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (rank-float64(lo))*(sorted[lo+1]-sorted[lo])
}

func main() {
	url := flag.String("url", "", "target URL")
	caFile := flag.String("ca", "", "CA certificate (PEM) of the server")
	bodyFile := flag.String("body", "", "request body file (JSON)")
	rate := flag.Float64("rate", 100, "requests per second, scheduled at fixed intervals")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	warmup := flag.Duration("warmup", time.Second, "sent at the same rate first, not measured")
	conns := flag.Int("conns", 128, "at most this many connections")
	flag.Parse()

	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			MaxConnsPerHost:     *conns,
			MaxIdleConnsPerHost: *conns,
			IdleConnTimeout:     5 * time.Second,
		},
	}

	interval := time.Duration(float64(time.Second) / *rate)
	total := int((*warmup + *duration) / interval)
	skip := int(*warmup / interval)
	latencies := make([]float64, total)
	failures := make([]string, total)
	var wg sync.WaitGroup
	start := time.Now().Add(50 * time.Millisecond)
	for i := 0; i < total; i++ {
		scheduled := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(scheduled))
		wg.Add(1)
		go func(i int, scheduled time.Time) {
			defer wg.Done()
			request, _ := http.NewRequest("POST", *url, bytes.NewReader(body))
			request.Header.Set("Content-Type", "application/json")
			response, err := client.Do(request)
			if err != nil {
				failures[i] = "transport"
				return
			}
			io.Copy(io.Discard, response.Body)
			response.Body.Close()
			latencies[i] = float64(time.Since(scheduled).Microseconds()) / 1000
			if response.StatusCode != 200 {
				failures[i] = fmt.Sprintf("http %d", response.StatusCode)
			}
		}(i, scheduled)
	}
	sendEnd := time.Now()
	wg.Wait()

	out := result{Rate: *rate, Errors: map[string]int{}, Millis: map[string]float64{}}
	measured := []float64{}
	for i := skip; i < total; i++ {
		out.Sent++
		if failures[i] != "" {
			out.Errors[failures[i]]++
			continue
		}
		out.OK++
		measured = append(measured, latencies[i])
	}
	out.Achieved = float64(total) / sendEnd.Sub(start).Seconds()
	sort.Float64s(measured)
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		out.Millis[fmt.Sprintf("p%g", q)] = percentile(measured, q)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

// Package loadbench drives one HTTP path at a time for a fixed time with a fixed number of concurrent
// workers (a closed loop: each worker sends its next request when the previous one is answered) and
// measures throughput, latency percentiles and errors. It owns the load driver and the bare gin baseline
// of the load benchmark `make bench` runs (host/load_bench_test.go); it knows nothing of kasse's paths.
package loadbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
)

// ErrDone, returned by a [Next] function, ends that worker's loop early without counting an error: the
// path has run out of prepared input (first deliveries can be sent only once each).
var ErrDone = errors.New("loadbench: no more requests")

// Next returns the request worker sends as its i-th (from 0). It is called concurrently by different
// workers, never concurrently for one worker, so state kept per worker needs no lock.
type Next func(worker, i int) (*http.Request, error)

// Options is how a path is driven.
type Options struct {
	// Concurrency is the number of workers (default 32).
	Concurrency int
	// Duration is how long the workers send (default 2 s).
	Duration time.Duration
	// Client sends the requests; its transport should keep at least Concurrency idle connections
	// (see [NewClient]).
	Client *http.Client
	// OK says whether an answer is a success (default: any 2xx status).
	OK func(*http.Response) bool
}

// Result is what one run measured.
type Result struct {
	// Requests counts the answered requests, errors included.
	Requests int
	// Errors counts requests that failed in transport or were answered with a status OK refused.
	Errors int
	// FirstError describes one error, for the report.
	FirstError string
	// Elapsed is the time from the first request to the last answer.
	Elapsed time.Duration
	// P50 and P99 are latency percentiles over every answered request.
	P50, P99 time.Duration
	// CPU is the CPU time the whole process (client, server and anything else in it) used during the
	// run, 0 where it cannot be measured. Unlike req/s it hardly depends on what else the machine runs.
	CPU time.Duration
}

// CPUPerRequest is CPU divided by Requests.
func (r Result) CPUPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

// RPS is the throughput: answered requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// NewClient returns a client that keeps a connection per worker alive and never follows redirects (a
// redirect is an answer of the path under test, not a hop to measure).
func NewClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        2 * concurrency,
			MaxIdleConnsPerHost: 2 * concurrency,
			IdleConnTimeout:     time.Minute,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Run drives next with o.Concurrency workers until o.Duration has passed, ctx is done or every worker's
// next returned [ErrDone], and returns what it measured. An error from next other than ErrDone counts as
// an error and ends that worker.
func Run(ctx context.Context, o Options, next Next) Result {
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Duration <= 0 {
		o.Duration = 2 * time.Second
	}
	if o.Client == nil {
		o.Client = NewClient(o.Concurrency)
	}
	if o.OK == nil {
		o.OK = func(r *http.Response) bool { return r.StatusCode >= 200 && r.StatusCode < 300 }
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	type workerResult struct {
		lat      []time.Duration
		errors   int
		firstErr string
	}
	results := make([]workerResult, o.Concurrency)
	var wg sync.WaitGroup
	cpu0 := ProcessCPU()
	start := time.Now()
	for w := range o.Concurrency {
		wg.Go(func() {
			res := &results[w]
			res.lat = make([]time.Duration, 0, 1024)
			var body bytes.Buffer
			fail := func(format string, args ...any) {
				res.errors++
				if res.firstErr == "" {
					res.firstErr = fmt.Sprintf(format, args...)
				}
			}
			for i := 0; ctx.Err() == nil; i++ {
				req, err := next(w, i)
				if errors.Is(err, ErrDone) {
					return
				}
				if err != nil {
					fail("request %d of worker %d: %v", i, w, err)
					return
				}
				t0 := time.Now()
				// The run's deadline is not the request's: a request in flight at the end is finished
				// and counted rather than cut off as an error.
				resp, err := o.Client.Do(req)
				if err != nil {
					res.lat = append(res.lat, time.Since(t0))
					fail("%s %s: %v", req.Method, req.URL.Path, err)
					continue
				}
				// One buffer per worker: the client's own allocations count in the run's CPU time.
				body.Reset()
				_, _ = body.ReadFrom(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				res.lat = append(res.lat, time.Since(t0))
				if !o.OK(resp) {
					fail("%s %s: %d %.300s", req.Method, req.URL.Path, resp.StatusCode, body.Bytes())
				}
			}
		})
	}
	wg.Wait()
	out := Result{Elapsed: time.Since(start), CPU: ProcessCPU() - cpu0}
	var all []time.Duration
	for _, r := range results {
		all = append(all, r.lat...)
		out.Errors += r.errors
		if out.FirstError == "" {
			out.FirstError = r.firstErr
		}
	}
	out.Requests = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		out.P50 = all[len(all)/2]
		out.P99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return out
}

// NoopHandler is the baseline: a bare gin engine (no middleware) whose one route, GET /noop, answers 200
// with an empty body.
func NoopHandler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/noop", func(c *gin.Context) { c.Status(http.StatusOK) })
	return r
}

// RedisGetHandler is the floor under a read path: a bare gin engine whose one route, GET /get, reads value
// (stored under its own key first) with one Redis GET through rdb and answers it as JSON. With pipelined,
// the GET goes through rdb's automatic pipeliner, as kasse's session reads do by default.
func RedisGetHandler(ctx context.Context, rdb *redis.Client, value []byte, pipelined bool) (http.Handler, error) {
	const key = "loadbench:floor"
	if err := rdb.Set(ctx, key, value, 0).Err(); err != nil {
		return nil, fmt.Errorf("loadbench: store the floor's value: %w", err)
	}
	var reads redis.Cmdable = rdb
	if pipelined {
		ap, err := rdb.AutoPipeline()
		if err != nil {
			return nil, fmt.Errorf("loadbench: the floor's pipeliner: %w", err)
		}
		reads = ap
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/get", func(c *gin.Context) {
		v, err := reads.Get(c.Request.Context(), key).Bytes()
		if err != nil {
			c.Status(http.StatusServiceUnavailable)
			return
		}
		c.Data(http.StatusOK, "application/json; charset=utf-8", v)
	})
	return r, nil
}

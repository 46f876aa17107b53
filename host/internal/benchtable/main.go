// Command benchtable reads `go test -bench` output on stdin and prints the table `make bench` shows: the
// plugin's initiate mapping in wasm and natively (p50, p99, their ratio), the checkout API's throughput,
// and the load benchmark's paths (BenchmarkLoad/...) with each one's req/s as a share of the bare gin
// baseline measured in the same run. Lines it does not recognise are ignored.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// metrics maps a benchmark name (without the -N CPU suffix) to its reported metrics by unit.
type metrics map[string]map[string]float64

func parse(r io.Reader) (metrics, []string, error) {
	out := metrics{}
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			m[f[i+1]] = v
		}
		if _, seen := out[name]; !seen {
			order = append(order, name)
		}
		out[name] = m
	}
	return out, order, sc.Err()
}

func main() {
	ms, order, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if len(ms) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no benchmark results on stdin (see bin/bench.txt)")
		os.Exit(1)
	}
	fmt.Println()
	fmt.Printf("%-44s %12s %12s %14s\n", "benchmark", "p50", "p99", "ns/op | req/s")
	fmt.Println(strings.Repeat("-", 86))
	for _, name := range order {
		if strings.HasPrefix(name, loadPrefix) {
			continue
		}
		m := ms[name]
		last := fmt.Sprintf("%.0f ns/op", m["ns/op"])
		if rps, ok := m["req/s"]; ok {
			last = fmt.Sprintf("%.0f req/s", rps)
		}
		fmt.Printf("%-44s %12s %12s %14s\n", strings.TrimPrefix(name, "Benchmark"), us(m["p50-µs"]), us(m["p99-µs"]), last)
	}
	for _, name := range order {
		m := ms[name]
		if _, ok := m["p99-swap-ms"]; !ok {
			continue
		}
		fmt.Printf("%s: %.0f failed requests over %.0f swaps; p99 %.1f ms steady, %.1f ms during a swap (p50 %.1f / %.1f ms)\n",
			strings.TrimPrefix(name, "Benchmark"), m["failed"], m["swaps"], m["p99-steady-ms"], m["p99-swap-ms"],
			m["p50-steady-ms"], m["p50-swap-ms"])
	}
	for _, name := range order {
		m := ms[name]
		if _, ok := m["p99-gate-ms"]; !ok {
			continue
		}
		fmt.Printf("%s: %.0f failed live calls over %.0f gates; p99 %.1f ms steady, %.1f ms during a compile and gate (p50 %.2f / %.2f ms)\n",
			strings.TrimPrefix(name, "Benchmark"), m["failed"], m["gates"], m["p99-steady-ms"], m["p99-gate-ms"],
			m["p50-steady-ms"], m["p50-gate-ms"])
	}
	wasm, native := ms["BenchmarkBuildInitiate/wasm"], ms["BenchmarkBuildInitiate/native"]
	if wasm != nil && native != nil && native["p50-µs"] > 0 {
		fmt.Println(strings.Repeat("-", 86))
		fmt.Printf("initiate mapping, wasm ÷ native (encoding/json): p50 %.1fx, p99 %.1fx  (aim: within 5x, wasm p50 < 100 µs)\n",
			wasm["p50-µs"]/native["p50-µs"], wasm["p99-µs"]/native["p99-µs"])
	}
	printLoad(ms, order)
	printBoundary(ms, order)
	printPoolAndStart(ms, order)
	fmt.Println()
}

// loadPrefix names the load benchmark's rows; loadBaseline is its gin no-op baseline (run first and
// last, the second as gin-noop#01).
const (
	loadPrefix   = "BenchmarkLoad/"
	loadBaseline = loadPrefix + "gin-noop"
)

// loadTargets are issue 12's targets: a least share of the baseline's req/s, or a greatest p99.
var loadTargets = map[string]string{
	"callback-duplicate": ">= 15%", "callback-first": ">= 10%", "get-checkout": ">= 45%",
	"post-checkout": ">= 6%", "woo-order-created": ">= 5%", "express-shipping-details": "p99 <= 20 ms",
	"gin-redis-get": "(floor of GET, each on its own)", "gin-redis-get-pipelined": "(floor of GET, pipelined)",
}

// printLoad prints the load benchmark's table, if its rows are in ms: each path's req/s as a share of the
// gin baseline run just before it (gin-req/s), or of the mean gin-noop row for output without one.
func printLoad(ms metrics, order []string) {
	var base []float64
	for _, name := range order {
		if strings.HasPrefix(name, loadBaseline) {
			base = append(base, ms[name]["req/s"])
		}
	}
	if len(base) == 0 {
		return
	}
	var sum float64
	for _, v := range base {
		sum += v
	}
	mean := sum / float64(len(base))
	fmt.Println()
	fmt.Printf("%-28s %9s %8s %9s %9s %6s %8s %10s %8s %9s  %s\n", "load path (32 in flight)", "req/s", "of gin", "p50", "p99",
		"errors", "requests", "CPU/req", "CPU gin", "redis/req", "target")
	fmt.Println(strings.Repeat("-", 126))
	for _, name := range order {
		if !strings.HasPrefix(name, loadPrefix) {
			continue
		}
		m := ms[name]
		path := strings.TrimPrefix(name, loadPrefix)
		base := mean
		if g := m["gin-req/s"]; g > 0 {
			base = g
		}
		cpu, cpuShare := "-", "-"
		if v := m["cpu-µs/req"]; v > 0 {
			cpu = fmt.Sprintf("%.0f µs", v)
			if g := m["gin-cpu-µs/req"]; g > 0 {
				cpuShare = fmt.Sprintf("%.1f%%", 100*g/v)
			}
		}
		redisCmds := "-"
		if v, ok := m["redis-cmds/req"]; ok {
			redisCmds = fmt.Sprintf("%.1f", v)
		}
		fmt.Printf("%-28s %9.0f %7.1f%% %9s %9s %6.0f %8.0f %10s %8s %9s  %s\n", path, m["req/s"], 100*m["req/s"]/base,
			ms1(m["p50-µs"]), ms1(m["p99-µs"]), m["errors"], m["requests"], cpu, cpuShare, redisCmds, loadTargets[path])
	}
	if len(base) > 1 {
		fmt.Printf("of gin: req/s as a share of a gin no-op run just before the path (gin alone: %s req/s).\n", strings.Trim(fmt.Sprint(base), "[]"))
		fmt.Println("CPU/req: CPU time per request of the benchmark process (kasse, simulator, client) and redis-server;")
		fmt.Println("CPU gin: gin's CPU/req divided by the path's, the share the path would have on an idle machine.")
		fmt.Println("redis/req: Redis commands run per request (those run by scripts included).")
	}
}

func ms1(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f ms", v/1e3)
}

func us(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f µs", v)
}

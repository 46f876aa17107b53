package main

import (
	"fmt"
	"strings"
)

// printPoolAndStart prints what the second benchmark run of make bench measures besides the plugin
// boundary: plugin-call latency by concurrent callers (BenchmarkPluginPool), one instance's memory over a
// million calls (BenchmarkInstanceMemory), the plugins' part of a start (BenchmarkStartWarmCache), the
// real binary's start until /readyz answers (BenchmarkStartToReady) and its in-process breakdown
// (BenchmarkStartSteps). Rows that are absent are left out.
func printPoolAndStart(ms metrics, order []string) {
	var lines []string
	for _, name := range order {
		m := ms[name]
		short := strings.TrimPrefix(name, "Benchmark")
		switch {
		case strings.HasPrefix(name, "BenchmarkPluginPool/"):
			lines = append(lines, fmt.Sprintf("plugin call, %-22s p50 %9s  p99 %9s  (%.0f instances at the end)",
				strings.TrimPrefix(short, "PluginPool/")+":", us(m["p50-µs"]), us(m["p99-µs"]), m["instances"]))
		case name == "BenchmarkInstanceMemory":
			verdict := "flat"
			if m["pages-at-end"] > m["pages-at-50%"] {
				verdict = "GROWING"
			}
			lines = append(lines, fmt.Sprintf("instance memory over %.0f calls: %.0f pages at 10%%, %.0f at 50%%, %.0f at the end (peak %.0f; 64 KiB pages): %s after the first half",
				m["calls"], m["pages-at-10%"], m["pages-at-50%"], m["pages-at-end"], m["peak-pages"], verdict))
		case strings.HasPrefix(name, "BenchmarkStartWarmCache/"):
			lines = append(lines, fmt.Sprintf("plugins manager start (%s): %.1f ms", strings.TrimPrefix(short, "StartWarmCache/"), m["ms/start"]))
		case name == "BenchmarkStartToReady":
			lines = append(lines, fmt.Sprintf("start to /readyz (kasse binary, both plugins, warm cache): median %.0f ms (%.0f..%.0f)  (target <= 300 ms)",
				m["ready-ms"], m["ready-min-ms"], m["ready-max-ms"]))
		case name == "BenchmarkStartSteps":
			var parts []string
			for _, step := range []string{"schemas", "config", "telemetry", "store", "plugins", "service", "settlement", "drivers", "handlers"} {
				parts = append(parts, fmt.Sprintf("%s %.1f", step, m["ms-"+step]))
			}
			lines = append(lines, fmt.Sprintf("host.New %.1f ms: %s", m["ms-new"], strings.Join(parts, ", ")))
			parts = parts[:0]
			for _, part := range []string{"read", "verify", "rewrite", "compile", "instantiate", "gate"} {
				parts = append(parts, fmt.Sprintf("%s %.1f", part, m["ms-plugin-"+part]))
			}
			lines = append(lines, "  plugins step, summed over the bundles loaded in parallel (ms): "+strings.Join(parts, ", "))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Println()
	for _, l := range lines {
		fmt.Println(l)
	}
}

// printBoundary prints BenchmarkPluginBoundary as one row per plugin operation: native and wasm p50, their
// ratio (issue 12: at most 2x), the wasm p99 (at most 100 µs) and the wasm call's CPU time, which includes
// the background yields no call's duration shows. Run the benchmark again with -tags kasse_stdjson for
// the idiomatic native baseline of the reads.
func printBoundary(ms metrics, order []string) {
	const prefix = "BenchmarkPluginBoundary/"
	var lines []string
	for _, name := range order {
		op, ok := strings.CutSuffix(strings.TrimPrefix(name, prefix), "/wasm")
		if !strings.HasPrefix(name, prefix) || !ok {
			continue
		}
		wasm, native := ms[name], ms[prefix+op+"/native"]
		if native == nil || native["p50-µs"] == 0 {
			continue
		}
		lines = append(lines, fmt.Sprintf("%-36s %10s %10s %7.2fx %10s %10s", op, us(native["p50-µs"]), us(wasm["p50-µs"]),
			wasm["p50-µs"]/native["p50-µs"], us(wasm["p99-µs"]), us(wasm["cpu-µs/op"])))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Println()
	fmt.Printf("%-36s %10s %10s %8s %10s %10s\n", "plugin call (host boundary included)", "native p50", "wasm p50", "ratio", "wasm p99", "wasm CPU")
	fmt.Println(strings.Repeat("-", 90))
	for _, l := range lines {
		fmt.Println(l)
	}
}

//go:build linux

package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// storeMetrics are the /metrics series that explain a lost or repaired write: printed after the table.
var storeMetrics = []string{
	"kasse_store_unreplicated_writes_total",
	"kasse_checkout_divergences_total",
}

// metricsSummary reads storeMetrics from every kasse's operations listener, summed over label sets, one
// line per instance. A kasse restarted during the run counts from its restart only.
func (h *harness) metricsSummary(ctx context.Context) string {
	var b strings.Builder
	for i, k := range h.kasses {
		if k.ops == "" {
			continue
		}
		sums, err := h.scrape(ctx, k.ops+"/metrics")
		if err != nil {
			fmt.Fprintf(&b, "kasse-%d: /metrics: %v\n", i, err)
			continue
		}
		fmt.Fprintf(&b, "kasse-%d:", i)
		for _, name := range storeMetrics {
			fmt.Fprintf(&b, " %s %g;", strings.TrimPrefix(name, "kasse_"), sums[name])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (h *harness) scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.control.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sums := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name, rest, ok = line[:i], line[strings.LastIndexByte(line, '}')+1:], true
		}
		if !ok || !slices.Contains(storeMetrics, name) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(strings.TrimSpace(rest), &v); err == nil {
			sums[name] += v
		}
	}
	return sums, sc.Err()
}

// diagnose writes what explains failed invariants into the logs directory (KASSE_CHAOS_LOGS keeps it
// after the run): every Redis node's log (failovers, replication), and for each suspect session its
// kasse record as the API shows it and every line of the kasse and simulator logs that names it.
func (h *harness) diagnose(ctx context.Context, vs []*verdict) {
	if err := os.WriteFile(filepath.Join(h.logs, "redis.log"), []byte(h.cluster.Logs()), 0o644); err != nil {
		h.t.Logf("diagnose: %v", err)
	}
	var ids []string
	for _, v := range vs {
		for _, id := range v.suspects {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return
	}
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "==== session %s\n", id)
		if a, err := h.kasseDo(ctx, "check", http.MethodGet, "/v1/checkouts/"+id, nil); err != nil {
			fmt.Fprintf(&b, "GET: %v\n", err)
		} else {
			fmt.Fprintf(&b, "GET: %d %s\n", a.status, a.body)
		}
		for _, p := range h.procs() {
			lines, err := grepFile(p.logPath, id)
			if err != nil {
				fmt.Fprintf(&b, "-- %s: %v\n", p.name, err)
				continue
			}
			fmt.Fprintf(&b, "-- %s\n%s", p.name, lines)
		}
	}
	path := filepath.Join(h.logs, "suspects.log")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		h.t.Logf("diagnose: %v", err)
		return
	}
	h.t.Logf("diagnosis of %d sessions in %s, Redis logs beside it (set KASSE_CHAOS_LOGS to keep them)", len(ids), path)
}

// grepFile returns the lines of the file at path that contain s.
func grepFile(path, s string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var b strings.Builder
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if strings.Contains(line, s) {
			b.WriteString(line)
		}
		if err == io.EOF {
			return b.String(), nil
		} else if err != nil {
			return b.String(), err
		}
	}
}

package command_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/host"
	"github.com/kassehq/kasse/plugin/plugintest"
)

// maxStarts bounds the starts of one start benchmark whatever -benchtime says: a start takes a few hundred
// milliseconds, and make bench runs every benchmark with one -benchtime.
const maxStarts = 10

// startFixture is what a production start reads: the kasse binary, both shipped plugins as signed bundles
// (built, packaged and signed by that binary's own `kasse plugin` commands, as `make plugins` does), and a
// config with one merchant per plugin, a key that trusts the bundles and its own compilation cache.
type startFixture struct {
	bin, config string
	env         map[string]string
}

var startEnv = map[string]string{
	"KASSE_DEMO_CLIENT_SECRET":    "demo-client-secret",
	"KASSE_DEMO_SUBSCRIPTION_KEY": "demo-subscription-key",
	"KASSE_DEMO_API_KEY":          "demo-api-key",
	"KASSE_DEMO_API_KEY_EP":       "demo-api-key-ep",
	"KASSE_DEMO_URL_SECRET":       "demo-url-secret-for-the-start-benchmark",
}

// fixture is the start benchmarks' fixture, made once per test binary (go test runs a benchmark function
// once with b.N = 1 before the measured run, and building it takes tens of seconds), and fixtureDir the
// temporary directory that TestMain removes.
var (
	fixtureOnce sync.Once
	fixture     *startFixture
	fixtureDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		_ = os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func newStartFixture(b *testing.B) *startFixture {
	b.Helper()
	fixtureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kasse-start-bench-")
		if err != nil {
			b.Fatal(err)
		}
		fixtureDir = dir
		fixture = makeStartFixture(b, dir)
	})
	if fixture == nil {
		b.Fatal("making the start fixture failed earlier")
	}
	return fixture
}

func makeStartFixture(b *testing.B, dir string) *startFixture {
	b.Helper()
	root := plugintest.ModuleRoot(b)
	bin := filepath.Join(dir, "kasse")
	build := exec.Command("go", "build", "-o", bin, "./host/cmd/kasse")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(args ...string) {
		b.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("kasse %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("plugin", "keygen", "-out", filepath.Join(dir, "dev"))
	plugins := filepath.Join(dir, "plugins")
	for _, p := range []struct{ name, pkg, golden string }{
		{"vipps-ecom", "./plugin/vippsecom", "plugin/vippsecom/testdata/golden"},
		{"vipps-epayment", "./plugin/vippsepayment", "plugin/vippsepayment/testdata/golden"},
	} {
		run("plugin", "build", "-name", p.name, "-version", "1.0.0", "-pkg", p.pkg, "-golden", filepath.Join(root, p.golden), "-out", plugins)
		run("plugin", "sign", "-key", filepath.Join(dir, "dev.key"), filepath.Join(plugins, p.name))
	}
	pub, err := os.ReadFile(filepath.Join(dir, "dev.pub"))
	if err != nil {
		b.Fatal(err)
	}
	merchant := func(id, plugin, msn, keyEnv string) string {
		return `  ` + id + `:
    plugin: ` + plugin + `
    returnUrlPrefixes: ["https://shop.example/"]
    apiKeyEnv: ` + keyEnv + `
    vipps:
      baseUrl: http://127.0.0.1:1
      merchantSerialNumber: "` + msn + `"
      clientId: demo-client-id
      clientSecretEnv: KASSE_DEMO_CLIENT_SECRET
      subscriptionKeyEnv: KASSE_DEMO_SUBSCRIPTION_KEY
`
	}
	config := filepath.Join(dir, "kasse.yaml")
	yaml := `server:
  listen: 127.0.0.1:0
  publicUrl: https://kasse.example
  opsListen: 127.0.0.1:0
  urlSecretEnv: KASSE_DEMO_URL_SECRET
plugins:
  dir: plugins
  cacheDir: cache
  trustedKeys: ["` + strings.TrimSpace(string(pub)) + `"]
log:
  format: json
merchants:
` + merchant("ecom", "vipps-ecom", "123456", "KASSE_DEMO_API_KEY") + merchant("ep", "vipps-epayment", "654321", "KASSE_DEMO_API_KEY_EP")
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	return &startFixture{bin: bin, config: config, env: startEnv}
}

// startOnce runs the binary, waits for its public /readyz to answer 200 and stops it. It returns the time
// from just before the process was started until that answer.
func (f *startFixture) startOnce(b *testing.B, client *http.Client) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.bin, "serve", "-config", f.config, "-log-level", "info")
	cmd.Env = os.Environ()
	for k, v := range f.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	listening := make(chan string, 1)
	var logs strings.Builder
	scanned := make(chan struct{})
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			var line struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "kasse listening" {
				listening <- line.URL
			}
		}
	}()
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		<-scanned
		_ = cmd.Wait()
	}()
	var url string
	select {
	case url = <-listening:

	case <-scanned:
		b.Fatalf("kasse exited before listening:\n%s", logs.String())
	case <-ctx.Done():
		b.Fatal("kasse did not listen within a minute")
	}
	for {
		resp, err := client.Get(url + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(t0)
			}
		}
		if ctx.Err() != nil {
			b.Fatalf("/readyz never answered 200: %v", err)
		}
		time.Sleep(time.Millisecond) // a poll interval, not a synchronisation: the answer decides
	}
}

// BenchmarkStartToReady measures what an operator waits for at a restart: from starting the real kasse
// binary (as a child process, with both shipped plugins as signed bundles, a real config and a warm
// compilation cache) until its public /readyz answers 200 on loopback. The first start, not measured,
// warms the compilation cache and records the gate's verdicts. It reports the median, least and most
// milliseconds over at most ten starts (issue 12's target: 300 ms).
func BenchmarkStartToReady(b *testing.B) {
	f := newStartFixture(b)
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	f.startOnce(b, client) // warm
	starts := min(b.N, maxStarts)
	took := make([]time.Duration, 0, starts)
	b.ResetTimer()
	for range starts {
		took = append(took, f.startOnce(b, client))
		client.CloseIdleConnections()
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(ms(took[len(took)/2]), "ready-ms")
	b.ReportMetric(ms(took[0]), "ready-min-ms")
	b.ReportMetric(ms(took[len(took)-1]), "ready-max-ms")
}

// BenchmarkStartSteps is the in-process breakdown of BenchmarkStartToReady's start: host.New on the same
// kind of config and plugins directory, warm, with each of New's steps (ms-<step>) and, summed over both
// bundles, the parts of the plugins step (ms-plugin-<part>: read, verify, deadline rewrite, compile,
// first instance, gate), as means over at most ten starts. The bundles load in parallel, so the parts add
// up to more than ms-plugins.
func BenchmarkStartSteps(b *testing.B) {
	f := newStartFixture(b)
	ctx := context.Background()
	getenv := func(k string) string { return f.env[k] }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func() *host.Server {
		s, err := host.New(ctx, host.Options{ConfigPath: f.config, Getenv: getenv, Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	if err := start().Close(ctx); err != nil { // warm
		b.Fatal(err)
	}
	starts := min(b.N, maxStarts)
	sums := map[string]time.Duration{}
	var order []string
	add := func(name string, d time.Duration) {
		if _, ok := sums[name]; !ok {
			order = append(order, name)
		}
		sums[name] += d
	}
	b.ResetTimer()
	for range starts {
		t0 := time.Now()
		s := start()
		add("new", time.Since(t0))
		b.StopTimer()
		for _, st := range s.StartSteps() {
			add(st.Name, st.Took)
		}
		for _, bt := range s.PluginStartTimes() {
			add("plugin-read", bt.Read)
			add("plugin-verify", bt.Verify)
			add("plugin-rewrite", bt.LoadTimes.Rewrite)
			add("plugin-compile", bt.LoadTimes.Compile)
			add("plugin-instantiate", bt.LoadTimes.Instantiate)
			add("plugin-gate", bt.Gate)
		}
		if err := s.Close(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	for _, name := range order {
		b.ReportMetric(ms(sums[name]/time.Duration(starts)), "ms-"+name)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

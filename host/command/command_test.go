package command_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/adapters"
	_ "github.com/kassehq/kasse/adapters/standard"
	"github.com/kassehq/kasse/host/command"
	"github.com/kassehq/kasse/host/internal/testredis"
	"github.com/kassehq/kasse/plugin/plugintest"
)

// env holds the demo secrets the test configs name.
var env = map[string]string{
	"KASSE_DEMO_CLIENT_SECRET":    "demo-client-secret",
	"KASSE_DEMO_SUBSCRIPTION_KEY": "demo-subscription-key",
	"KASSE_DEMO_API_KEY":          "demo-api-key",
}

// configYAML is a good config whose plugins.dir is relative ("plugins"), with extra appended at the top
// level (a section other than plugins).
func configYAML(extra string) string {
	return `# a test config
server:
  listen: 127.0.0.1:0
  publicUrl: https://kasse.example
  opsListen: 127.0.0.1:0
plugins:
  dir: plugins
  devMode: true
  # The suite's shared compilation cache, and a call timeout a busy machine cannot miss while the gate
  # runs the vectors (the serve tests are about signals, not speed).
  cacheDir: ` + plugintest.CacheDir() + `
  callTimeout: 10s
` + extra + `
merchants:
  demo:
    plugin: vipps-ecom
    apiKeyEnv: KASSE_DEMO_API_KEY
    returnUrlPrefixes: ["https://shop.example/"]
    vipps:
      baseUrl: http://127.0.0.1:1
      merchantSerialNumber: "123456"
      clientId: demo-client-id
      clientSecretEnv: KASSE_DEMO_CLIENT_SECRET
      subscriptionKeyEnv: KASSE_DEMO_SUBSCRIPTION_KEY
`
}

// writeConfig writes a config file into a new directory, with plugins/vipps-ecom.wasm beside it holding
// module (an empty file when nil: config check only looks for it).
func writeConfig(t *testing.T, yaml string, module []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plugins", "vipps-ecom.wasm"), module, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kasse.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCommands(t *testing.T) {
	good := writeConfig(t, configYAML(""), nil)
	misspelt := writeConfig(t, configYAML("reconciler:\n  pendingTimout: 10m\n  interval: 2\n"), nil)
	noPlugin := writeConfig(t, configYAML(""), nil)
	if err := os.Remove(filepath.Join(filepath.Dir(noPlugin), "plugins", "vipps-ecom.wasm")); err != nil {
		t.Fatal(err)
	}
	unknownKind := writeConfig(t, strings.Replace(configYAML(""), "    plugin: vipps-ecom\n",
		"    plugin: vipps-ecom\n    platform: {kind: magento, webhookSecretEnv: KASSE_DEMO_API_KEY}\n", 1), nil)
	badYAML := writeConfig(t, configYAML("plugins:\n  devMode: true\n"), nil)
	// A store written by layout 1: a session key and a queued status update.
	oldRedis := testredis.Start(t)
	withRedis := maps.Clone(env)
	withRedis["KASSE_REDIS_URL"] = oldRedis
	if o, err := redis.ParseURL(oldRedis); err != nil {
		t.Fatal(err)
	} else {
		c := redis.NewClient(o)
		ctx := t.Context()
		if err := c.Set(ctx, "kasse:session:k1", `{"id":"k1"}`, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.HSet(ctx, "{kasse:outbound:}jobs", "j1", `{"id":"j1","kind":"status","payload":{}}`).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.ZAdd(ctx, "{kasse:outbound:}due", redis.Z{Score: 1, Member: "j1"}).Err(); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}

	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		stdout   []string // each must appear
		stderr   []string
		noStdout bool
	}{
		{name: "help", args: []string{"help"}, stdout: []string{"serve", "version", "config check", "plugin", "help"}},
		{name: "-h", args: []string{"-h"}, stdout: []string{"usage: kasse <command>"}},
		{name: "unknown command", args: []string{"bogus"}, code: 2, stderr: []string{`unknown command "bogus"`, "usage:"}, noStdout: true},
		{name: "version", args: []string{"version"}, stdout: []string{"kasse 0.1.0", "module:", "commit:", "go:         go1.", "plugin ABI: 2 (loads 1 and 2)"}},
		{name: "version with arguments", args: []string{"version", "x"}, code: 2, stderr: []string{"no arguments"}},
		{name: "config without check", args: []string{"config"}, code: 2, stderr: []string{"kasse config check"}},
		{name: "config check good", args: []string{"config", "check", good}, env: env,
			stdout: []string{good + ": ok (1 merchants: demo)"}},
		{name: "config check from KASSE_CONFIG", args: []string{"config", "check"},
			env:    map[string]string{"KASSE_CONFIG": good, "KASSE_DEMO_CLIENT_SECRET": "s", "KASSE_DEMO_SUBSCRIPTION_KEY": "k", "KASSE_DEMO_API_KEY": "a"},
			stdout: []string{good + ": ok"}},
		{name: "config check without the environment", args: []string{"config", "check", good}, code: 1,
			stderr: []string{good + ": 3 problems:\n", "  /merchants/demo/apiKeyEnv: merchant demo: API key: environment variable KASSE_DEMO_API_KEY is not set\n"}},
		{name: "config check -no-env", args: []string{"config", "check", "-no-env", good}, stdout: []string{": ok"}},
		{name: "config check misspelt", args: []string{"config", "check", misspelt}, env: env, code: 1, noStdout: true,
			stderr: []string{misspelt + ": 2 problems:\n",
				"  /reconciler/interval: must be a duration such as 100ms, 2s or 10m (a number needs a unit)\n",
				"  /reconciler/pendingTimout: unknown field; did you mean pendingTimeout?\n"}},
		{name: "config check plugin missing", args: []string{"config", "check", noPlugin}, env: env, code: 1,
			stderr: []string{"/merchants/demo/plugin: no module " + filepath.Join(filepath.Dir(noPlugin), "plugins", "vipps-ecom.wasm")}},
		{name: "config check unknown adapter", args: []string{"config", "check", unknownKind}, env: env, code: 1,
			stderr: []string{"/merchants/demo/platform/kind:"}},
		{name: "config check duplicate key", args: []string{"config", "check", badYAML}, env: env, code: 1,
			stderr: []string{badYAML + `: parse yaml: line `, `, column 1: mapping key "plugins" already defined at [6:1]`}},
		{name: "config check missing file", args: []string{"config", "check", filepath.Join(t.TempDir(), "nope.yaml")}, code: 1,
			stderr: []string{"no such file or directory"}},
		{name: "config check two files", args: []string{"config", "check", good, good}, code: 2, stderr: []string{"one file at most"}},
		{name: "serve bad flag", args: []string{"serve", "-nope"}, code: 2, stderr: []string{"flag provided but not defined: -nope"}},
		{name: "serve bad log level", args: []string{"serve", "-log-level", "loud"}, code: 2, stderr: []string{`level "loud"`}},
		{name: "serve config refused", args: []string{"-config", misspelt}, env: env, code: 1,
			stderr: []string{`msg="kasse: cannot start: config refused"`, `problem=1/2`, `field=/reconciler/interval`, `problem=2/2`, `did you mean pendingTimeout?`}},
		{name: "plugin", args: []string{"plugin"}, code: 2, stderr: []string{"usage: kasse plugin"}},
		{name: "store without migrate", args: []string{"store"}, code: 2, stderr: []string{"kasse store migrate"}},
		{name: "store migrate without redis", args: []string{"store", "migrate", "-config", good}, env: env, code: 1,
			stderr: []string{"no store.redis"}},
		{name: "serve refuses the old layout", args: []string{"-config", good}, env: withRedis, code: 1,
			stderr: []string{"earlier key layout", "{kasse:outbound:}jobs", "kasse store migrate"}},
		{name: "store migrate", args: []string{"store", "migrate", "-config", good}, env: withRedis,
			stdout: []string{"layout 2; moved 1 keys, 0 poll entries and 1 queued jobs"}},
		{name: "store migrate again", args: []string{"store", "migrate", "-config", good}, env: withRedis,
			stdout: []string{"moved 0 keys, 0 poll entries and 0 queued jobs"}},
		{name: "plugin help", args: []string{"plugin", "help"}, stdout: []string{"keygen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A working directory other than the config's: relative paths must follow the file.
			t.Chdir(t.TempDir())
			var stdout, stderr bytes.Buffer
			code := command.Run(t.Context(), tt.args, command.IO{Stdout: &stdout, Stderr: &stderr,
				Getenv: func(k string) string { return tt.env[k] }, Adapters: adapters.Registered()})
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, &stdout, &stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, &stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, &stderr)
				}
			}
			if tt.noStdout && stdout.Len() > 0 {
				t.Errorf("stdout not empty: %s", &stdout)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the process's writer and the test's reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// buildKasse builds host/cmd/kasse into a temporary directory.
func buildKasse(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kasse")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(plugintest.ModuleRoot(t), "host", "cmd", "kasse")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestServeStopsOnSignal runs the built binary with a real plugin, waits until it listens, sends SIGTERM
// or SIGINT, and checks that it drains, logs its stop and exits 0; in JSON when asked, every line JSON.
func TestServeStopsOnSignal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM and SIGINT are Unix signals; this test runs everywhere else")
	}
	bin, module := buildKasse(t), plugintest.Build(t, "./plugin/vippsecom")

	for _, tt := range []struct {
		name string
		sig  syscall.Signal
		args []string
		yaml string
		json bool
	}{
		{name: "SIGTERM text", sig: syscall.SIGTERM, args: []string{"serve"}},
		{name: "SIGINT json from flag", sig: syscall.SIGINT, args: []string{"serve", "-log-format", "json"}, json: true},
		{name: "SIGTERM json from config", sig: syscall.SIGTERM, args: []string{"serve"}, yaml: "log:\n  format: json\n  level: debug\n", json: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, configYAML(tt.yaml), module)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append(tt.args, "-config", cfg)...)
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), "KASSE_DEMO_CLIENT_SECRET=s", "KASSE_DEMO_SUBSCRIPTION_KEY=k", "KASSE_DEMO_API_KEY=a")
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			waitFor(t, "kasse listening", time.Minute, func() bool {
				select {
				case err := <-exited:
					t.Fatalf("kasse exited before listening: %v\n%s", err, stderr.String())
				default:
				}
				return strings.Contains(stderr.String(), "kasse listening")
			})
			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			if err := <-exited; err != nil {
				t.Fatalf("exit: %v\n%s", err, stderr.String())
			}
			logs := stderr.String()
			for _, want := range []string{"kasse: stopping: draining in-flight requests", "kasse: stopped", tt.sig.String()} {
				if !strings.Contains(logs, want) {
					t.Errorf("logs lack %q:\n%s", want, logs)
				}
			}
			if !tt.json {
				if !regexp.MustCompile(`(?m)^time=\S+ level=INFO msg="kasse: stopped" drained=`).MatchString(logs) {
					t.Errorf("not text logs:\n%s", logs)
				}
				return
			}
			sc := bufio.NewScanner(strings.NewReader(logs))
			for sc.Scan() {
				var line map[string]any
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Errorf("not a JSON line: %s", sc.Text())
				}
			}
			if tt.yaml != "" && !strings.Contains(logs, `"level":"DEBUG"`) && !strings.Contains(logs, `"level":"INFO"`) {
				t.Errorf("no levels in:\n%s", logs)
			}
		})
	}
}

// Example of the output shape of a refused config, as an operator sees it.
func ExampleRun_configCheck() {
	dir, _ := os.MkdirTemp("", "kasse-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "kasse.yaml")
	_ = os.WriteFile(path, []byte("plugins:\n  callTimeout: 100\nmerchant: {}\n"), 0o644)
	var stderr bytes.Buffer
	code := command.Run(context.Background(), []string{"config", "check", path},
		command.IO{Stdout: io.Discard, Stderr: &stderr, Getenv: func(string) string { return "" }})
	fmt.Print(strings.ReplaceAll(stderr.String(), path, "kasse.yaml"))
	fmt.Println("exit", code)
	// Output:
	// kasse.yaml: 3 problems:
	//   /merchant: unknown field; did you mean merchants?
	//   /merchants: is required
	//   /plugins/callTimeout: must be a duration such as 100ms, 2s or 10m (a number needs a unit)
	// exit 1
}

// TestServeDrainsInFlight: a request in flight when SIGTERM arrives is answered before kasse exits. The
// "Vipps" kasse calls holds every request until the test lets it go, so the checkout is in flight for as
// long as the test wants, without timing.
func TestServeDrainsInFlight(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM and SIGINT are Unix signals; this test runs everywhere else")
	}
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	vipps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(arrived) })
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
	}))
	defer vipps.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	bin := buildKasse(t)
	cfg := writeConfig(t, strings.Replace(configYAML(""), "http://127.0.0.1:1", vipps.URL, 1),
		plugintest.Build(t, "./plugin/vippsecom"))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "-config", cfg)
	cmd.Env = append(os.Environ(), "KASSE_DEMO_CLIENT_SECRET=s", "KASSE_DEMO_SUBSCRIPTION_KEY=k",
		"KASSE_DEMO_API_KEY=the-api-key")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	listening := regexp.MustCompile(`msg="kasse listening" url=(http://127\.0\.0\.1:\d+)`)
	var base string
	waitFor(t, "kasse listening", time.Minute, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("kasse exited before listening: %v\n%s", err, stderr.String())
		default:
		}
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		}
		return base != ""
	})

	type answer struct {
		status int
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		body := `{"merchant":"demo","reference":"drain-1","amount":1000,"currency":"NOK","description":"Socks",` +
			`"returnUrl":"https://shop.example/thanks"}`
		req, _ := http.NewRequest("POST", base+"/v1/checkouts", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer the-api-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		answered <- answer{status: resp.StatusCode}
	}()
	select {
	case <-arrived:
	case <-time.After(time.Minute):
		t.Fatalf("the checkout never reached Vipps:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stopping line", time.Minute, func() bool {
		return strings.Contains(stderr.String(), "kasse: stopping: draining in-flight requests")
	})
	select {
	case a := <-answered:
		t.Fatalf("answered before Vipps did: %+v", a)
	case err := <-exited:
		t.Fatalf("kasse exited with a request in flight: %v", err)
	default:
	}
	close(release)
	a := <-answered
	if a.err != nil || a.status == 0 {
		t.Fatalf("the request in flight was not answered: %+v\n%s", a, stderr.String())
	}
	if err := <-exited; err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), `msg="kasse: stopped"`) {
		t.Errorf("no stopped line:\n%s", stderr.String())
	}
	t.Logf("in-flight checkout answered %d during the drain", a.status)
}

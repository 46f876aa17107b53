// Package plugintest is test support for plugin modules: it builds a Go plugin package to WebAssembly and
// gives tests a plugins.Runtime that shares one on-disk compilation cache, so that each test binary does not
// pay the second-long compile of a Go module again. It also owns the golden-vector harness every plugin runs
// natively and through its built module ([Golden], with the -update flag that rewrites the expected
// outputs), the check of those vectors against the provider's OpenAPI description ([Spec]), the fast
// readers' differential helpers ([SameAsGeneral]) and a count of the guest function calls and allocations
// of one call ([ProfileCalls]).
package plugintest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kassehq/kasse/host/plugins"
)

// Build compiles the Go plugin package pkg (an import path in this module, or a directory relative to the
// module root such as "./plugin/vipps/ecom") with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w'
//
// into t.TempDir and returns the module's bytes. Repeated builds are fast thanks to Go's build cache. The
// test fails if the build does.
func Build(t testing.TB, pkg string) []byte {
	t.Helper()
	return BuildTags(t, pkg)
}

// BuildTags is Build with build tags, e.g. "kasse_abi1" for a module of plugin ABI version 1 (JSON input).
func BuildTags(t testing.TB, pkg string, tags ...string) []byte {
	t.Helper()
	wasm, err := build(ModuleRoot(t), t.TempDir(), pkg, tags...)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// BuildAll builds several Go plugin packages as Build does, two go commands at a time, and returns their
// modules keyed by the packages as given.
func BuildAll(t testing.TB, pkgs ...string) map[string][]byte {
	t.Helper()
	root := ModuleRoot(t)
	var (
		mu   sync.Mutex
		mods = make(map[string][]byte, len(pkgs))
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 2)
	)
	for _, pkg := range pkgs {
		dir := t.TempDir()
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			wasm, err := build(root, dir, pkg)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			mods[pkg] = wasm
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return mods
}

func build(root, dir, pkg string, tags ...string) ([]byte, error) {
	out := filepath.Join(dir, "plugin.wasm")
	args := []string{"build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command(goTool(), append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("plugintest: build %s: %w\n%s", pkg, err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("plugintest: build %s: %w", pkg, err)
	}
	return wasm, nil
}

// ModuleRoot returns the directory of the go.mod of the module being tested, from `go env GOMOD`.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	msg, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("plugintest: go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(msg))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("plugintest: not inside a Go module (go env GOMOD is empty)")
	}
	return filepath.Dir(gomod)
}

// goTool returns the go command that runs the test, so the plugin is built by the same toolchain.
func goTool() string {
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// CacheDir returns the wazero compilation cache directory shared by tests:
// $TMPDIR/kasse-wazero-cache/<wazero version>. The version (from the module's go.mod) is part of the path
// because wazero keys its cache by its own version, which reads "dev" in test binaries: a wazero upgrade
// must not load modules compiled by the previous one.
func CacheDir() string {
	return filepath.Join(os.TempDir(), "kasse-wazero-cache", wazeroVersion())
}

// wazeroVersion reads the wazero version this module requires, once per process.
var wazeroVersion = sync.OnceValue(func() string {
	msg, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "unknown"
	}
	gomod, err := os.ReadFile(strings.TrimSpace(string(msg)))
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(gomod)) {
		f := strings.Fields(line)
		if f = slices.DeleteFunc(f, func(s string) bool { return s == "require" }); len(f) >= 2 && f[0] == "github.com/tetratelabs/wazero" {
			return f[1]
		}
	}
	return "unknown"
})

// Runtime returns a plugins.Runtime built from cfg with CacheDir as its compilation cache, closed when the
// test ends.
func Runtime(t testing.TB, cfg plugins.RuntimeConfig) *plugins.Runtime {
	t.Helper()
	r, err := plugins.NewRuntime(context.Background(), cfg.WithCompilationCacheDir(CacheDir()))
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("plugintest: %v", err)
		}
	})
	return r
}

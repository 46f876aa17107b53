package plugins

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// buildEcom builds the vipps-ecom plugin module with the toolchain that runs the test (plugintest cannot be
// imported here: it imports this package).
func buildEcom(b *testing.B) []byte {
	out := filepath.Join(b.TempDir(), "p.wasm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", out, "./plugin/vippsecom")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, msg)
	}
	w, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

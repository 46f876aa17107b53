package adapters_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/kassehq/kasse"

// goList runs `go list` with args from the module root (the parent of this package's directory) and
// returns its output lines, one per listed item.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append([]string{"list"}, args...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// depsOf maps each package matched by pattern to its transitive dependencies. With tests, the test
// variants of the packages ("p [p.test]") and their test binaries are listed too.
func depsOf(t *testing.T, tests bool, pattern string) map[string][]string {
	t.Helper()
	args := []string{"-f", `{{.ImportPath}}:{{join .Deps ","}}`}
	if tests {
		args = append(args, "-test")
	}
	out := map[string][]string{}
	for _, line := range goList(t, append(args, pattern)...) {
		pkg, deps, _ := strings.Cut(line, ":")
		out[pkg] = append(out[pkg], strings.Split(deps, ",")...)
	}
	return out
}

// TestAdaptersDependOnlyOnTheContract: the adapters tree (the contract third parties import, the built-in
// adapters, standard and adaptertest) depends on nothing of the host but host/payment, the canonical
// checkout and session types that Event and StatusUpdate carry. In particular no adapter can reach
// host/config, where the Vipps secrets live, or the hook and notification machinery.
func TestAdaptersDependOnlyOnTheContract(t *testing.T) {
	allowed := map[string]bool{module + "/host/payment": true}
	// Tests included: the adapters' own tests build their merchants from the contract too.
	for pkg, deps := range depsOf(t, true, "./adapters/...") {
		for _, d := range deps {
			if strings.HasPrefix(d, module+"/host/") && !allowed[d] || d == module+"/host" {
				t.Errorf("%s depends on %s: the adapters tree may use only host/payment of the host", pkg, d)
			}
		}
	}
}

// TestHostPartsDoNotDependOnAdapterImplementations: below the host package itself and its commands, host
// packages know adapters only through the contract (package adapters); which adapters exist is decided by
// the blank imports of a command (adapters/standard, or a third party's own).
func TestHostPartsDoNotDependOnAdapterImplementations(t *testing.T) {
	seen := 0
	for pkg, deps := range depsOf(t, false, "./host/...") {
		if pkg == module+"/host" || strings.HasPrefix(pkg, module+"/host/cmd/") {
			continue
		}
		seen++
		for _, d := range deps {
			if strings.HasPrefix(d, module+"/adapters/") {
				t.Errorf("%s depends on %s: host parts may import only the adapters contract", pkg, d)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list found only %d host packages; the rule checked nothing", seen)
	}
}

package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kassehq/kasse/host/upgrade/cli"
	"github.com/kassehq/kasse/plugin/plugintest"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestPackageSignVerify runs keygen, build, sign, verify and inspect as an operator would, and checks that
// verify refuses what the host would refuse.
func TestPackageSignVerify(t *testing.T) {
	dir := t.TempDir()
	root := plugintest.ModuleRoot(t)
	wasm := filepath.Join(dir, "in.wasm")
	if err := os.WriteFile(wasm, plugintest.Build(t, "./plugin/vippsecom"), 0o644); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "dev")
	stem := filepath.Join(dir, "build", "vipps-ecom")

	if code, out, errOut := run(t, "keygen", "-out", key); code != 0 || !strings.Contains(out, `"ed25519:`) {
		t.Fatalf("keygen: %d %s %s", code, out, errOut)
	}
	if fi, err := os.Stat(key + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", fi, err)
	}
	if code, _, errOut := run(t, "keygen", "-out", key); code != 1 || !strings.Contains(errOut, "file exists") {
		t.Errorf("keygen over an existing key: %d %s", code, errOut)
	}
	code, out, errOut := run(t, "build", "-name", "vipps-ecom", "-version", "1.2.0", "-wasm", wasm,
		"-golden", filepath.Join(root, "plugin", "vippsecom", "testdata", "golden"), "-out", filepath.Join(dir, "build"))
	if code != 0 || !strings.Contains(out, "built vipps-ecom@1.2.0") {
		t.Fatalf("build: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := run(t, "verify", "-trusted-key", key+".pub", stem); code != 1 || !strings.Contains(errOut, "refused: signature: no signature") {
		t.Errorf("verify unsigned: %d %s", code, errOut)
	}
	if code, out, errOut := run(t, "verify", "-dev", "-no-gate", stem); code != 0 || !strings.Contains(out, "unsigned") {
		t.Errorf("verify unsigned in dev mode: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := run(t, "sign", "-key", key+".key", stem); code != 0 || !strings.Contains(out, "signed") {
		t.Fatalf("sign: %d %s %s", code, out, errOut)
	}
	code, out, errOut = run(t, "verify", "-trusted-key", key+".pub", stem)
	if code != 0 || !strings.Contains(out, "ok: vipps-ecom@1.2.0") || !strings.Contains(out, "golden vectors and the conformance vectors") {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	code, out, errOut = run(t, "inspect", stem)
	for _, want := range []string{"plugin:     vipps-ecom@1.2.0 (abi 2)", "signature:  present", "kasse_call(i32) -> (i64)", "memory:     memory min"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("inspect: %d %s", code, errOut)
	}

	// Another key does not verify, and a module changed after signing is refused.
	other := filepath.Join(dir, "other")
	run(t, "keygen", "-out", other)
	if code, _, errOut := run(t, "verify", "-trusted-key", other+".pub", "-no-gate", stem); code != 1 || !strings.Contains(errOut, "does not verify") {
		t.Errorf("verify with another key: %d %s", code, errOut)
	}
	f, err := os.OpenFile(stem+".wasm", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte{0, 2, 1, 'x'})
	_ = f.Close()
	if code, _, errOut := run(t, "verify", "-trusted-key", key+".pub", stem); code != 1 || !strings.Contains(errOut, "refused: digest: module digest mismatch") {
		t.Errorf("verify tampered: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "verify", "-trusted-key", key+".pub", "-max-module-bytes", "1000", stem); code != 1 || !strings.Contains(errOut, "refused: size") {
		t.Errorf("verify oversized: %d %s", code, errOut)
	}

	// A manifest that declares another ABI version than the module reports is refused as the host refuses it.
	abi1 := filepath.Join(dir, "abi1", "vipps-ecom")
	if code, out, errOut := run(t, "build", "-name", "vipps-ecom", "-version", "1.2.0", "-abi", "1", "-wasm", wasm,
		"-golden", filepath.Join(root, "plugin", "vippsecom", "testdata", "golden"), "-out", filepath.Dir(abi1)); code != 0 {
		t.Fatalf("build -abi 1: %d %s %s", code, out, errOut)
	}
	run(t, "sign", "-key", key+".key", abi1)
	if code, out, _ := run(t, "inspect", abi1); code != 0 || !strings.Contains(out, "vipps-ecom@1.2.0 (abi 1)") {
		t.Errorf("inspect -abi 1 bundle: %d %s", code, out)
	}
	if code, _, errOut := run(t, "verify", "-trusted-key", key+".pub", abi1); code != 1 ||
		!strings.Contains(errOut, "refused: abi-version: manifest abiVersion 1, but the module reports 2") {
		t.Errorf("verify a version 2 module declared as version 1: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "build", "-name", "x", "-version", "1.0.0", "-abi", "3", "-wasm", wasm); code != 1 || !strings.Contains(errOut, "-abi 3: want 1 or 2") {
		t.Errorf("build -abi 3: %d %s", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	if code, _, errOut := run(t); code != 2 || !strings.Contains(errOut, "usage: kasse plugin") {
		t.Errorf("no command: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "build", "-name", "x"); code != 1 || !strings.Contains(errOut, "-name, -version and one of -pkg or -wasm are required") {
		t.Errorf("build without version: %d %s", code, errOut)
	}
}

// Package wat turns the hand-written WebAssembly text modules that tests use as guests (the hostile ones in
// host/plugins/testdata/wat) into binary modules at test time, with wabt's wat2wasm, so that no built
// module is kept in git. CI installs wabt (Debian package `wabt`); a machine without it fails the tests
// that need it with an error that says so.
package wat

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Module builds the text module at path (a .wat file) and returns the binary module. Function names are
// kept in the name section (--debug-names), as the traps the tests read name them.
func Module(t testing.TB, path string) []byte {
	t.Helper()
	b, err := Build(path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Build runs wat2wasm on the text module at path, writing into dir, and returns the binary module.
func Build(path, dir string) ([]byte, error) {
	tool, err := exec.LookPath("wat2wasm")
	if err != nil {
		return nil, errors.New("wat: wat2wasm not found on PATH; install wabt (Debian: apt-get install wabt)")
	}
	out := filepath.Join(dir, filepath.Base(path)+".wasm")
	cmd := exec.Command(tool, "--debug-names", path, "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, errors.New("wat: wat2wasm " + path + ": " + err.Error() + ": " + string(msg))
	}
	return os.ReadFile(out)
}

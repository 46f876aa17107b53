package plugins

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// rewriteCacheDir is the subdirectory of the compilation cache directory that keeps rewritten modules.
const rewriteCacheDir = "kasse-deadline-checks"

// rewritePath is where the rewrite of wasm (the module with the host's deadline checks compiled in,
// deadline.go and terminate.go) is kept: in the compilation cache directory, by a digest of this host build
// and of the module, so that a restart reads it back (a few milliseconds) instead of parsing every function
// body twice (tens of milliseconds for a Go guest). Empty without a compilation cache directory. See
// RATIONALE.md, "Why the deadline rewrite is cached beside the compiled code".
func (r *Runtime) rewritePath(wasm []byte) string {
	if r.cfg.cacheDir == "" {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(buildIdentity()))
	h.Write([]byte{0})
	h.Write(wasm)
	return filepath.Join(r.cfg.cacheDir, rewriteCacheDir, hex.EncodeToString(h.Sum(nil)))
}

// readRewrite reads a cached rewrite: a SHA-256 of the module followed by the module. A file that is
// short, torn or altered does not match its digest and is ignored.
func readRewrite(path string) ([]byte, bool) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) < sha256.Size {
		return nil, false
	}
	sum := sha256.Sum256(data[sha256.Size:])
	if !bytes.Equal(sum[:], data[:sha256.Size]) {
		return nil, false
	}
	return data[sha256.Size:], true
}

// writeRewrite writes a rewrite through a temporary file and a rename, so that a reader never sees half
// of it.
func writeRewrite(path string, module []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return
	}
	sum := sha256.Sum256(module)
	_, err = f.Write(sum[:])
	if err == nil {
		_, err = f.Write(module)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
}

// buildIdentity identifies the build of this host process, so that a rewrite made by another build (whose
// rewriter may differ) is never read back: the VCS revision when the binary was stamped from a clean
// tree, else the executable's path, size and modification time.
var buildIdentity = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" && modified == "false" {
			return "rev:" + rev + ":" + bi.GoVersion
		}
	}
	unique := "unknown:" + strconv.FormatInt(time.Now().UnixNano(), 10) // never matches a cached rewrite
	exe, err := os.Executable()
	if err != nil {
		return unique
	}
	st, err := os.Stat(exe)
	if err != nil {
		return unique
	}
	return "exe:" + exe + ":" + strconv.FormatInt(st.Size(), 10) + ":" + strconv.FormatInt(st.ModTime().UnixNano(), 10)
})

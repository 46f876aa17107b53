package upgrade

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kassehq/kasse/schemas"
)

// VerdictFileName is the file in the plugins directory that remembers which bundles passed the gate, by a
// digest of everything the gate's verdict depends on (see verdictKey). A bundle whose digest is in it does
// not run its golden and conformance vectors again when kasse starts; a changed module, golden file,
// manifest, host build, output schema or conformance set changes the digest, and the gate runs. It starts
// with a dot and does not end in ".wasm", so the directory scan never takes it for a bundle. See
// RATIONALE.md, "The gate's verdict is remembered by digest".
const VerdictFileName = ".kasse-plugins-verdicts.json"

// verdictFormat is the version of the verdict file's format.
const verdictFormat = 1

// maxVerdicts bounds the verdict file: the oldest verdicts beyond it are forgotten (their bundles then run
// the gate again, which is only slower).
const maxVerdicts = 64

type savedVerdicts struct {
	Format   int                      `json:"format"`
	Verdicts map[string]*savedVerdict `json:"verdicts"`
}

// savedVerdict is one bundle that passed the gate.
type savedVerdict struct {
	Plugin  string    `json:"plugin"`
	Version string    `json:"version"`
	At      time.Time `json:"at"`
	// Cost is what the gate measured when the bundle passed; it is shown again when the gate is skipped.
	Cost GateCost `json:"cost"`
}

func (m *Manager) verdictPath() string { return filepath.Join(m.cfg.Dir, VerdictFileName) }

// hostIdentity identifies the build of this host process, so that a new build (whose gate, fence or codec
// may differ) does not trust verdicts of an older one: the VCS revision stamped into the binary when there
// is one and the tree was clean, else the executable's path, size and modification time.
var hostIdentity = sync.OnceValue(func() string {
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
	exe, err := os.Executable()
	if err != nil {
		return "unknown:" + strconv.FormatInt(time.Now().UnixNano(), 10) // never matches a saved verdict
	}
	st, err := os.Stat(exe)
	if err != nil {
		return "unknown:" + strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	return "exe:" + exe + ":" + strconv.FormatInt(st.Size(), 10) + ":" + strconv.FormatInt(st.ModTime().UnixNano(), 10)
})

// outputSchema is the plugin output schema's text, part of the verdict key.
var outputSchema = sync.OnceValue(func() []byte {
	b, err := fs.ReadFile(schemas.FS(), schemas.PluginOutput)
	if err != nil {
		return []byte("unreadable: " + err.Error())
	}
	return b
})

// verdictKey is the digest a gate verdict is remembered by: the manifest (module and golden digests, name,
// version, ABI version, ops), the host build, the conformance vectors and the output schema.
func verdictKey(v *Verified) (string, error) {
	manifest, err := json.Marshal(v.Manifest)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, part := range [][]byte{manifest, []byte(hostIdentity()), conformanceJSON, outputSchema()} {
		var n [8]byte
		for i, l := 0, uint64(len(part)); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:]) // length-prefixed, so that no two different part lists hash alike
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readVerdicts loads the verdict file. A missing or unreadable file is an empty one: every bundle then runs
// the gate, which is the safe direction, so an unreadable file is only logged.
func (m *Manager) readVerdicts() map[string]*savedVerdict {
	out := map[string]*savedVerdict{}
	if m.cfg.Dir == "" {
		return out
	}
	data, err := os.ReadFile(m.verdictPath())
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	var s savedVerdicts
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err = dec.Decode(&s); err == nil && s.Format != verdictFormat {
			err = errors.New("format " + strconv.Itoa(s.Format) + ", want " + strconv.Itoa(verdictFormat))
		}
	}
	if err != nil {
		m.log.Warn("plugin verdict file unreadable; every bundle runs the gate", "file", m.verdictPath(), "err", err)
		return out
	}
	for k, v := range s.Verdicts {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

// passedGate returns the remembered verdict for key, if the bundle passed the gate before.
func (m *Manager) passedGate(key string) (*savedVerdict, bool) {
	v, ok := m.verdicts[key]
	return v, ok
}

// rememberPass records that the bundle with key passed the gate and writes the verdict file (atomically;
// a failure is logged, and only costs a gate run at the next start). Callers hold m.mu.
func (m *Manager) rememberPass(key string, v *Verified, cost GateCost) {
	if m.cfg.Dir == "" {
		return
	}
	m.verdicts[key] = &savedVerdict{Plugin: v.Manifest.Name, Version: v.Manifest.Version, At: m.now(), Cost: cost}
	if len(m.verdicts) > maxVerdicts {
		keys := make([]string, 0, len(m.verdicts))
		for k := range m.verdicts {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return m.verdicts[b].At.Compare(m.verdicts[a].At) })
		for _, k := range keys[maxVerdicts:] {
			delete(m.verdicts, k)
		}
	}
	data, err := json.MarshalIndent(savedVerdicts{Format: verdictFormat, Verdicts: m.verdicts}, "", "  ")
	if err == nil {
		err = writeFileAtomic(m.verdictPath(), append(data, '\n'))
	}
	if err != nil {
		m.log.Warn("plugin verdict not saved; the gate runs again at the next start", "file", m.verdictPath(), "err", err)
	}
}

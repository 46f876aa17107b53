package upgrade

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// StateFileName is the file in the plugins directory that keeps the manager's decisions across restarts:
// per plugin the active version, the canary, the highest version ever activated, the quarantined (rolled
// back) versions and the recent history. It starts with a dot and does not end in ".wasm", so the
// directory scan never takes it for a bundle. See RATIONALE.md, "Plugin decisions in a state file".
const StateFileName = ".kasse-plugins-state.json"

// stateFormat is the version of the state file's format.
const stateFormat = 1

// persistedHistory is how many events per plugin the state file keeps.
const persistedHistory = 50

// Quarantine is a version that must not serve again until an operator forces it: it was rolled back.
type Quarantine struct {
	Version string    `json:"version"`
	SHA256  string    `json:"sha256,omitempty"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

type savedState struct {
	Format  int                     `json:"format"`
	Plugins map[string]*savedPlugin `json:"plugins"`
}

type savedPlugin struct {
	Active        string       `json:"active,omitempty"`
	Canary        string       `json:"canary,omitempty"`
	CanaryPercent int          `json:"canaryPercent,omitempty"`
	Highest       string       `json:"highest,omitempty"`
	Quarantined   []Quarantine `json:"quarantined,omitempty"`
	History       []Event      `json:"history,omitempty"`
}

func (m *Manager) statePath() string { return filepath.Join(m.cfg.Dir, StateFileName) }

// readState loads the state file. A missing file is an empty state. A file that cannot be read or decoded
// is kept aside (renamed with a ".corrupt-<unix time>" suffix, so that an operator can look at it) and
// reported; kasse then starts from the directory alone rather than not at all.
func (m *Manager) readState() map[string]*savedPlugin {
	out := map[string]*savedPlugin{}
	if m.cfg.Dir == "" {
		return out
	}
	data, err := os.ReadFile(m.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	var s savedState
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(&s)
		if err == nil && s.Format != stateFormat {
			err = fmt.Errorf("format %d, want %d", s.Format, stateFormat)
		}
	}
	if err != nil {
		aside := m.statePath() + ".corrupt-" + strconv.FormatInt(m.now().Unix(), 10)
		_ = os.Rename(m.statePath(), aside)
		m.log.Error("plugin state file unreadable; starting from the plugins dir alone", "file", m.statePath(),
			"kept_as", aside, "err", err)
		m.stateErrors.Add(1)
		return out
	}
	for name, p := range s.Plugins {
		if p != nil {
			out[name] = p
		}
	}
	return out
}

// saveState writes every plugin's decisions to the state file: a temporary file in the same directory,
// synced, then renamed over the old one, so that a crash leaves the old or the new file, never half of
// one. Callers hold m.mu. A failure is logged and counted; the decision in memory stands.
func (m *Manager) saveState() {
	if m.cfg.Dir == "" {
		return
	}
	s := savedState{Format: stateFormat, Plugins: map[string]*savedPlugin{}}
	for name, p := range m.saved {
		if m.state(name) == nil { // a plugin known only from an earlier run: keep what we knew
			s.Plugins[name] = p
		}
	}
	for name, st := range m.statesMap() {
		p := &savedPlugin{Highest: st.highest}
		if a := st.active.Load(); a != nil {
			p.Active = a.manifest.Version
		}
		if c := st.canary.Load(); c != nil {
			p.Canary, p.CanaryPercent = c.v.manifest.Version, c.percent
		}
		for _, q := range st.quarantined {
			p.Quarantined = append(p.Quarantined, q)
		}
		slices.SortFunc(p.Quarantined, func(a, b Quarantine) int { return compareVersions(a.Version, b.Version) })
		p.History = st.history[max(0, len(st.history)-persistedHistory):]
		s.Plugins[name] = p
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err == nil {
		err = writeFileAtomic(m.statePath(), append(data, '\n'))
	}
	if err != nil {
		m.stateErrors.Add(1)
		m.log.Error("plugin state not saved; the decision holds until a restart", "file", m.statePath(), "err", err)
	}
}

// writeFileAtomic writes data to path through a synced temporary file in the same directory and a rename.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil { // make the rename itself durable
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// writeBundle writes an uploaded bundle into the plugins directory as <name>-<version>.*, each file
// atomically, the module last: the directory scan keys on the module, so it never sees a bundle without
// its manifest, signature or golden vectors. It returns the stem. Callers hold m.mu.
func (m *Manager) writeBundle(v *version) (string, error) {
	b := v.verified.Bundle
	stem := v.manifest.Name + "-" + v.manifest.Version
	files := []struct {
		suffix string
		data   []byte
	}{
		{SuffixGolden, b.Golden}, {SuffixSignature, b.Signature}, {SuffixManifest, b.Manifest}, {SuffixModule, b.Module},
	}
	for _, f := range files {
		path := filepath.Join(m.cfg.Dir, stem+f.suffix)
		if len(f.data) == 0 {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("upgrade: write bundle %s: %w", stem, err)
			}
			continue
		}
		if err := writeFileAtomic(path, f.data); err != nil {
			return "", fmt.Errorf("upgrade: write bundle %s: %w", stem, err)
		}
	}
	return stem, nil
}

// quarantine marks v as not to serve again (it was rolled back) and saves the decision. Callers hold m.mu.
func (m *Manager) quarantine(v *version, reason string) {
	if v.st.quarantined == nil {
		v.st.quarantined = map[string]Quarantine{}
	}
	v.st.quarantined[v.manifest.Version] = Quarantine{Version: v.manifest.Version, SHA256: v.manifest.SHA256,
		Reason: reason, At: m.now()}
}

// peekManifest reads the name and version a bundle's manifest claims, without verifying anything: enough
// to skip a quarantined version without compiling it.
func peekManifest(b Bundle) (name, ver string) {
	var mf struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if json.Unmarshal(b.Manifest, &mf) != nil {
		return "", ""
	}
	return mf.Name, mf.Version
}

package upgrade

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LoadDir loads every bundle in the plugins directory at start-up and activates, per plugin name, the
// highest version. It fails on the first bundle that is refused: a host should not start with a plugin
// directory it cannot trust. Bundles loaded here are not reloaded by Run until their files change.
func (m *Manager) LoadDir(ctx context.Context) error {
	if m.cfg.Dir == "" {
		return nil
	}
	stems, fps, err := scanDir(m.cfg.Dir)
	if err != nil {
		return err
	}
	type staged struct{ name, version string }
	var ok []staged
	for _, stem := range stems {
		b, err := ReadBundle(filepath.Join(m.cfg.Dir, stem), m.cfg.Verify.MaxModuleBytes)
		if err != nil {
			return fmt.Errorf("upgrade: plugins dir %s: %s: %w", m.cfg.Dir, stem, err)
		}
		info, err := m.Apply(ctx, Update{Source: "dir", Bundle: b}, Activation{Mode: ModeStage})
		if err != nil {
			return fmt.Errorf("upgrade: plugins dir %s: %s: %w", m.cfg.Dir, stem, err)
		}
		m.mu.Lock()
		m.seen[stem] = fps[stem]
		m.mu.Unlock()
		ok = append(ok, staged{info.Plugin, info.Version})
	}
	best := map[string]string{}
	for _, s := range ok {
		if cur, found := best[s.name]; !found || compareVersions(s.version, cur) > 0 {
			best[s.name] = s.version
		}
	}
	for name, ver := range best {
		if err := m.activateNamed(ctx, name, ver, "activated at start: the highest version in the plugins dir", true); err != nil {
			return fmt.Errorf("upgrade: plugins dir %s: %w", m.cfg.Dir, err)
		}
	}
	return nil
}

// Run watches the plugins directory until ctx is done. A bundle whose files are new or changed, and stayed
// the same for one more scan (so a copy in progress is not read half-written), goes through Apply: it is
// activated, or started as a canary when CanaryPercent is set and the plugin has an active version. A
// refused bundle is recorded and not retried until its files change. Removing files unloads nothing.
func (m *Manager) Run(ctx context.Context) {
	if m.cfg.Dir == "" {
		return
	}
	t := time.NewTicker(m.cfg.WatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Scan(ctx)
		}
	}
}

// Scan runs one scan of the plugins directory, as Run does at every tick. It returns the stems it applied.
func (m *Manager) Scan(ctx context.Context) []string {
	stems, fps, err := scanDir(m.cfg.Dir)
	if err != nil {
		m.log.Warn("plugins dir scan failed", "dir", m.cfg.Dir, "err", err)
		return nil
	}
	var ready []string
	m.mu.Lock()
	for _, stem := range stems {
		fp := fps[stem]
		switch {
		case m.seen[stem] == fp:
			delete(m.pending, stem)
		case m.pending[stem] == fp:
			delete(m.pending, stem)
			m.seen[stem] = fp
			ready = append(ready, stem)
		default:
			m.pending[stem] = fp
		}
	}
	m.mu.Unlock()
	for _, stem := range ready {
		b, err := ReadBundle(filepath.Join(m.cfg.Dir, stem), m.cfg.Verify.MaxModuleBytes)
		act := Activation{Mode: ModeActivate}
		if m.cfg.CanaryPercent > 0 {
			act = Activation{Mode: ModeCanary, Percent: m.cfg.CanaryPercent}
		}
		if _, err := m.Apply(ctx, Update{Source: "dir", Bundle: b, Err: err}, act); err != nil {
			m.log.Warn("dropped-in plugin not applied", "stem", stem, "err", err)
		}
	}
	return ready
}

// scanDir lists the bundle stems in dir (every *.wasm) with a fingerprint of their files' sizes and
// modification times.
func scanDir(dir string) ([]string, map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("upgrade: plugins dir: %w", err)
	}
	var stems []string
	fps := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), SuffixModule) {
			continue
		}
		stem := strings.TrimSuffix(e.Name(), SuffixModule)
		var fp strings.Builder
		for _, suffix := range []string{SuffixModule, SuffixManifest, SuffixSignature, SuffixGolden} {
			fi, err := os.Stat(filepath.Join(dir, stem+suffix))
			switch {
			case errors.Is(err, os.ErrNotExist):
				fp.WriteString("-;")
			case err != nil:
				return nil, nil, fmt.Errorf("upgrade: plugins dir: %w", err)
			default:
				fp.WriteString(strconv.FormatInt(fi.Size(), 10) + "@" + strconv.FormatInt(fi.ModTime().UnixNano(), 10) + ";")
			}
		}
		stems = append(stems, stem)
		fps[stem] = fp.String()
	}
	slices.Sort(stems)
	return stems, fps, nil
}

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

// LoadDir loads every bundle in the plugins directory at start-up and restores the decisions of the last
// run from the state file (StateFileName): per plugin it activates the version that was active, else the
// highest version in the directory, and it restores the canary. A version that was rolled back
// (quarantined) is not even loaded, and a bundle that is refused does not stop the start: both are logged,
// recorded in the plugin's history (or the refusals) and counted in SkippedBundles; the host then starts
// with what it could load, and a merchant whose plugin has no version fails the config check instead.
// Bundles loaded here are not reloaded by Run until their files change. It fails only when the directory
// cannot be read.
//
// The expensive part of every bundle (reading, verifying, loading, and the gate when its verdict is not
// remembered) runs first, for all bundles in parallel, at most GOMAXPROCS at once (preload.go); the
// decisions are then taken one bundle at a time, in the directory's order. StartTimes says where the time
// went.
func (m *Manager) LoadDir(ctx context.Context) error {
	if m.cfg.Dir == "" {
		return nil
	}
	stems, fps, err := scanDir(m.cfg.Dir)
	if err != nil {
		return err
	}
	pres := m.preload(ctx, stems)
	defer func() {
		for _, pre := range pres {
			pre.discard(ctx)
		}
	}()
	staged := map[string][]string{}
	for i, stem := range stems {
		m.mu.Lock()
		m.seen[stem] = fps[stem] // a refused file is not retried until it changes
		m.mu.Unlock()
		pre := pres[i]
		if pre.quarantined != nil {
			m.skipped.Add(1)
			m.mu.Lock()
			m.recordRefusal(pre.name, pre.version, SourceDir, pre.quarantined)
			m.mu.Unlock()
			continue
		}
		info, err := m.Apply(ctx, Update{Source: SourceDir, Bundle: pre.bundle, Err: pre.readErr, pre: pre}, Activation{Mode: ModeStage})
		if err != nil {
			m.skipped.Add(1)
			m.log.Warn("plugin bundle in the plugins dir not loaded", "stem", stem, "err", err)
			continue
		}
		m.mu.Lock()
		m.stems[stem] = stemRef{info.Plugin, info.Version}
		m.mu.Unlock()
		staged[info.Plugin] = append(staged[info.Plugin], info.Version)
	}
	times := make([]BundleTimes, len(pres))
	for i, pre := range pres {
		times[i] = pre.times
	}
	m.mu.Lock()
	m.startTimes = times
	m.mu.Unlock()
	for name, vers := range staged {
		m.mu.Lock()
		sp := m.saved[name]
		m.mu.Unlock()
		target, why := "", ""
		if sp != nil && sp.Active != "" && slices.Contains(vers, sp.Active) {
			target, why = sp.Active, "restored at start: the version active before the restart"
		} else {
			slices.SortFunc(vers, compareVersions)
			target, why = vers[len(vers)-1], "activated at start: the highest version in the plugins dir"
			if sp != nil && sp.Active != "" {
				why += " (" + sp.Active + ", active before the restart, is not there)"
			}
		}
		if err := m.activateNamed(ctx, name, target, why, true); err != nil {
			m.skipped.Add(1)
			m.log.Error("plugin version not activated at start", "plugin", name, "version", target, "err", err)
			continue
		}
		if sp != nil && sp.Canary != "" && sp.Canary != target && slices.Contains(vers, sp.Canary) {
			if err := m.Canary(ctx, name, sp.Canary, sp.CanaryPercent, Force()); err != nil {
				m.log.Warn("canary not restored at start", "plugin", name, "version", sp.Canary, "err", err)
			}
		}
	}
	return nil
}

// SkippedBundles counts the bundles in the plugins directory that were refused or skipped as quarantined,
// at start or by the watcher, and StateErrors the state files that could not be read or written: the
// host prints both as metrics.
func (m *Manager) SkippedBundles() uint64 { return m.skipped.Load() }

// StateErrors counts failures to read or write the state file.
func (m *Manager) StateErrors() uint64 { return m.stateErrors.Load() }

// Run watches the plugins directory until ctx is done. A bundle whose files are new or changed, and stayed
// the same for one more scan (so a copy in progress is not read half-written), goes through Apply: it is
// activated, or started as a canary when CanaryPercent is set and the plugin has an active version. A
// refused bundle is recorded and not retried until its files change. A bundle whose module file is removed
// retires: it keeps serving the sessions it started until it has had no call for RetireAfter, then it is
// forgotten and unloaded (draining its calls; its sessions go to the active version). The active version
// and the canary keep serving until they are replaced. A scan also takes up the
// rollbacks another instance sharing the directory wrote into the state file (syncState).
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
	m.syncState(ctx)
	for stem := range m.seen {
		if _, ok := fps[stem]; !ok {
			// The listing was taken before the lock: an upload may have written its bundle and marked it
			// seen since. Only a module file that is gone now was removed.
			if _, err := os.Stat(filepath.Join(m.cfg.Dir, stem+SuffixModule)); err == nil {
				continue
			}
			m.removed(stem)
		}
	}
	m.retireIdle()
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
		info, err := m.Apply(ctx, Update{Source: SourceDir, Bundle: b, Err: err}, act)
		if err != nil {
			m.skipped.Add(1)
			m.log.Warn("dropped-in plugin not applied", "stem", stem, "err", err)
			continue
		}
		m.mu.Lock()
		m.stems[stem] = stemRef{info.Plugin, info.Version}
		m.mu.Unlock()
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
		if e.IsDir() || !strings.HasSuffix(e.Name(), SuffixModule) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		stem := strings.TrimSuffix(e.Name(), SuffixModule)
		fp, err := fingerprint(dir, stem)
		if err != nil {
			return nil, nil, err
		}
		stems = append(stems, stem)
		fps[stem] = fp
	}
	slices.Sort(stems)
	return stems, fps, nil
}

// fingerprint describes a bundle's files by their sizes and modification times.
func fingerprint(dir, stem string) (string, error) {
	var fp strings.Builder
	for _, suffix := range []string{SuffixModule, SuffixManifest, SuffixSignature, SuffixGolden} {
		fi, err := os.Stat(filepath.Join(dir, stem+suffix))
		switch {
		case errors.Is(err, os.ErrNotExist):
			fp.WriteString("-;")
		case err != nil:
			return "", fmt.Errorf("upgrade: plugins dir: %w", err)
		default:
			fp.WriteString(strconv.FormatInt(fi.Size(), 10) + "@" + strconv.FormatInt(fi.ModTime().UnixNano(), 10) + ";")
		}
	}
	return fp.String(), nil
}

// removed handles a bundle whose module file is gone from the plugins dir. The active version and the
// canary keep serving until they are replaced. Another version that is loaded retires: no new checkout
// uses it (only the active version and the canary take new ones), but the sessions it started keep using
// it, since a session's later operations are built by the plugin that initiated it, until it has had no
// call for RetireAfter; retireIdle then forgets and unloads it. Callers hold m.mu.
func (m *Manager) removed(stem string) {
	delete(m.seen, stem)
	delete(m.pending, stem)
	ref, ok := m.stems[stem]
	delete(m.stems, stem)
	if !ok {
		return
	}
	for other, r := range m.stems {
		if r == ref && other != stem {
			return // another file still holds the same version
		}
	}
	st := m.state(ref.name)
	if st == nil {
		return
	}
	v, ok := st.versions[ref.version]
	if !ok {
		return
	}
	if st.active.Load() == v || (st.canary.Load() != nil && st.canary.Load().v == v) {
		m.log.Warn("plugin bundle file removed, but the version serves; it stays loaded until it is replaced",
			"stem", stem, "plugin", ref.name, "version", ref.version)
		return
	}
	v.mu.RLock()
	loaded := v.p != nil
	v.mu.RUnlock()
	if loaded && !v.banned.Load() && m.cfg.RetireAfter > 0 {
		v.retiring, v.retiredAt = stem, m.now()
		m.event(st, Event{Action: ActionRemoved, Version: ref.version, Detail: "bundle file " + stem + SuffixModule +
			" removed from the plugins dir; serving its sessions until it has had no call for " + m.cfg.RetireAfter.String()})
		return
	}
	m.forget(st, v, stem)
}

// retireIdle forgets and unloads the retiring versions that have had no call for RetireAfter (nor
// since they retired). Callers hold m.mu.
func (m *Manager) retireIdle() {
	now := m.now()
	for _, st := range m.statesMap() {
		for _, v := range st.versions {
			if v.retiring == "" {
				continue
			}
			last := v.retiredAt
			if c := time.Unix(0, v.lastCall.Load()); c.After(last) {
				last = c
			}
			if st.active.Load() == v || (st.canary.Load() != nil && st.canary.Load().v == v) {
				v.retiring = "" // activated again by hand: it serves, so it stays
				continue
			}
			if now.Sub(last) < m.cfg.RetireAfter {
				continue
			}
			stem := v.retiring
			v.retiring = ""
			m.forget(st, v, stem)
		}
	}
}

// forget drops v from its plugin's versions and unloads it, draining its calls; its sessions go to the
// active version from then on. Callers hold m.mu.
func (m *Manager) forget(st *pluginState, v *version, stem string) {
	if sh := st.shadow.Load(); sh != nil && sh.v == v {
		m.stopShadow(st)
	}
	delete(st.versions, v.manifest.Version)
	st.previous = slices.DeleteFunc(st.previous, func(x *version) bool { return x == v })
	v.banned.Store(true) // its sessions go to the active version from now on
	v.mu.RLock()
	loaded := v.p != nil
	v.mu.RUnlock()
	detail := "bundle file " + stem + SuffixModule + " removed from the plugins dir"
	if loaded && v.unloading == nil {
		m.setLoaded(st, v, false)
		job := &unloadJob{done: make(chan struct{})}
		v.unloading = job
		m.bg.Add(1)
		go m.unload(v, job)
		detail += "; unloading after its calls finish"
	}
	m.event(st, Event{Action: ActionRemoved, Version: v.manifest.Version, Detail: detail})
}

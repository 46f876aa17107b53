package upgrade

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/kassehq/kasse/host/plugins"
)

// preloaded is one bundle of the plugins directory read, verified and loaded ahead of Apply, so that
// LoadDir does the expensive part of every bundle (hashing, the deadline rewrite, compiling or reading the
// compilation cache, the first instance) in parallel and only the decisions one after the other. Apply
// takes what it finds here instead of doing it again; what it does not take, discard closes.
type preloaded struct {
	bundle  Bundle
	readErr error
	// name and version are the manifest's, when it could be read.
	name, version string
	// quarantined is set, and nothing loaded, for a version rolled back before.
	quarantined *RefusedError

	verified  *Verified
	verifyErr error
	// p is the loaded plugin until Apply takes it (stage sets it to nil); loadErr is Load's error.
	p       *plugins.Plugin
	loadErr error
	// gated says the preload measured and gated p (a bundle without a remembered verdict, for a plugin
	// with no active version); cost and gateErr are the outcome (gateErr also holds measure's error).
	gated   bool
	cost    GateCost
	gateErr error
	// times says where the preload spent its time.
	times BundleTimes
}

// BundleTimes says where loading one bundle at start spent its time (see Manager.StartTimes).
type BundleTimes struct {
	// Stem names the bundle's files in the plugins directory.
	Stem string
	// Read is reading the bundle's files; Verify checking its signature and digests.
	Read, Verify time.Duration
	// Load is plugins.Runtime.Load, with its parts in LoadTimes.
	Load      time.Duration
	LoadTimes plugins.LoadTimes
	// Gate is running the golden and conformance vectors (zero when the verdict was remembered).
	Gate time.Duration
}

// preload reads, verifies and loads the bundles named by stems, at most GOMAXPROCS at once. A bundle
// whose plugin already has an active version (LoadDir on a running manager) is only read and verified:
// its load must be a background one beside the live calls, which stage does.
func (m *Manager) preload(ctx context.Context, stems []string) []*preloaded {
	pres := make([]*preloaded, len(stems))
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, stem := range stems {
		pre := &preloaded{times: BundleTimes{Stem: stem}}
		pres[i] = pre
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			m.preloadOne(ctx, stem, pre)
		})
	}
	wg.Wait()
	return pres
}

func (m *Manager) preloadOne(ctx context.Context, stem string, pre *preloaded) {
	t0 := time.Now()
	pre.bundle, pre.readErr = ReadBundle(filepath.Join(m.cfg.Dir, stem), m.cfg.Verify.MaxModuleBytes)
	t1 := time.Now()
	pre.times.Read = t1.Sub(t0)
	if pre.readErr != nil {
		return
	}
	pre.name, pre.version = peekManifest(pre.bundle)
	if pre.name != "" {
		m.mu.Lock()
		q, quarantined := m.quarantinedVersion(pre.name, pre.version)
		active := false
		if st := m.state(pre.name); st != nil {
			active = st.active.Load() != nil
			if _, known := st.versions[pre.version]; known {
				active = true // stage decides about a known version; nothing to load ahead
			}
		}
		m.mu.Unlock()
		if quarantined {
			pre.quarantined = &RefusedError{Plugin: pre.name, Version: pre.version, Rule: RuleQuarantined,
				Err: fmt.Errorf("%s%s was rolled back at %s (%s); not loaded", stem, SuffixModule, q.At.Format(time.RFC3339), q.Reason)}
			return
		}
		if active {
			return
		}
	}
	pre.verified, pre.verifyErr = Verify(pre.bundle, m.cfg.Verify)
	t2 := time.Now()
	pre.times.Verify = t2.Sub(t1)
	if pre.verifyErr != nil {
		return
	}
	pre.p, pre.loadErr = m.loadVerified(ctx, pre.verified)
	pre.times.Load = time.Since(t2)
	if pre.p == nil {
		return
	}
	pre.times.LoadTimes = pre.p.LoadTimes()
	// A bundle that has not passed the gate under this host build (a first start, or the first start after
	// an upgrade of kasse) runs its vectors here, beside the other bundles'.
	key, err := verdictKey(pre.verified)
	if err != nil {
		return
	}
	m.mu.Lock()
	_, remembered := m.passedGate(key)
	m.mu.Unlock()
	if remembered {
		return
	}
	t3 := time.Now()
	pre.gated = true
	if pre.cost, pre.gateErr = m.measure(ctx, pre.p, nil, pre.verified); pre.gateErr == nil {
		pre.gateErr = Gate(ctx, pre.p, pre.verified, m.cfg.Schemas)
	}
	pre.times.Gate = time.Since(t3)
}

// take returns the plugin preloaded for verified, if it is the same module, and hands its ownership to
// the caller; ok is false when nothing was preloaded for it.
func (pre *preloaded) take(verified *Verified) (p *plugins.Plugin, err error, ok bool) {
	if pre == nil || pre.verified == nil || (pre.p == nil && pre.loadErr == nil) ||
		pre.verified.Manifest.SHA256 != verified.Manifest.SHA256 ||
		pre.verified.Manifest.Name != verified.Manifest.Name || pre.verified.Manifest.Version != verified.Manifest.Version {
		return nil, nil, false
	}
	p, err = pre.p, pre.loadErr
	pre.p, pre.loadErr = nil, nil
	return p, err, true
}

// StartTimes returns where LoadDir spent its time, bundle by bundle (in parallel, so the parts add up to
// more than LoadDir took).
func (m *Manager) StartTimes() []BundleTimes {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.startTimes)
}

// discard closes a preloaded plugin that Apply did not take.
func (pre *preloaded) discard(ctx context.Context) {
	if pre.p != nil {
		_ = pre.p.Close(context.WithoutCancel(ctx))
		pre.p = nil
	}
}

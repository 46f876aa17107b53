// Package upgrade owns the life of plugin versions after they are built: verifying a signed bundle
// (manifest, ed25519 signature, digests, size), loading it through host/plugins (which applies the import,
// export, ABI and memory checks), gating it on its own golden vectors and the host's conformance vectors,
// and activating it with one atomic swap per plugin name. It keeps recent versions loaded so that sessions
// keep using the version that created them, sends a canary share of new checkouts to a new version, counts
// failures per version and rolls a version on probation back by itself past a threshold, runs a version in
// shadow beside the active one and reports differences, and watches the plugins directory for dropped-in
// bundles.
//
// The pipeline follows OPA's bundle plugin: fetch (a directory scan or an upload hands an Update to
// Manager.Apply) → verify (Verify) → load (plugins.Runtime.Load) → gate (Gate) → activate, with a Status per
// plugin. A refused version never serves, and the active version keeps serving while a new one is checked.
//
// # Bundles
//
// A plugin version is delivered as files sharing a stem (`kasse plugin build` and `sign` write them):
//
//	<stem>.wasm            the module
//	<stem>.manifest.json   Manifest: name, version, abiVersion, sha256 and size of the module, ops,
//	                       goldenSha256 of the golden file
//	<stem>.golden.json     GoldenFile: the version's own vectors (inputs and expected outputs)
//	<stem>.wasm.sig        base64 ed25519 signature over "kasse-plugin-manifest-v1\n" + the manifest bytes
//
// The signature covers the manifest, and the manifest pins the module and the golden file by digest, so
// one signature covers all three. Outside development mode a bundle needs a signature by a trusted key and
// golden vectors; in development mode a bare <name>.wasm loads too (its version is "sha256-" and the first
// 12 hex digits of its digest), but a manifest that does not match its module is refused in every mode.
//
// # Swaps and draining
//
// Callers get a version handle from Plugin, PluginForNewCheckout or PluginVersion; every handle is a
// checkout.Plugin. Activation swaps the per-name pointer, so a call that already holds the old handle
// finishes on the old version. A version that is unloaded (it fell out of the KeepVersions most recent) is
// drained first: the unload takes the version's write lock, which waits for the calls holding its read lock,
// and only then closes its instances. A call that reaches an unloaded version goes to the active one.
//
// # Canary, probation and rollback
//
// A canary gets a share of new checkouts, picked by a hash of the session id (so a retried checkout lands
// on the same version). A canary, and a version activated over another, is on probation: every call that
// failed a user is counted (traps, timeouts, exits, oversized output, outputs that fail the plugin output
// schema, errors answered as data that are the plugin's fault, and outputs the host refused afterwards,
// reported through Refused; not the provider's refusals), with its latency. It is rolled back by itself
// when its failure rate exceeds its baseline's (the active version for a canary, the replaced version for
// an activation) by RollbackErrorRate after RollbackErrors failures, or when its p99 exceeds the
// baseline's by RollbackLatencyFactor and RollbackLatencyMin (health.go). Probation of an activated
// version ends after ProbationCalls calls; a canary's lasts until it is activated. A rolled-back version
// serves nothing more (the sessions it created go to the active version) and is quarantined: it does not
// serve again, not even after a restart, until an operator forces it.
//
// # Order, persistence and cost
//
// Versions are SemVer, ordered by golang.org/x/mod/semver; a version to activate or canary must be higher
// than every version ever activated unless the operator forces it (Force, ErrNotNewer). With a plugins
// directory, uploads are written into it and every decision into its state file (persist.go), from which
// LoadDir restores the active version and the quarantine at start; a refused or quarantined bundle never
// stops the start. The gate also times the new version against the active one (cost.go) and refuses one
// much slower (RuleSlow).
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/semver"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/schemas"
)

// Defaults of Config.
const (
	// DefaultKeepVersions is how many previously active versions stay loaded per plugin.
	DefaultKeepVersions = 2
	// DefaultRollbackErrors and DefaultRollbackErrorRate: a version on probation is rolled back once it
	// has failed at least this many calls and this share of its calls.
	DefaultRollbackErrors    = 5
	DefaultRollbackErrorRate = 0.05
	// DefaultProbationCalls is how many calls a newly activated version stays on probation (rollback armed).
	DefaultProbationCalls = 1000
	// DefaultWatchInterval is how often Run scans the plugins directory.
	DefaultWatchInterval = 2 * time.Second
	// DefaultRetireAfter is how long a removed version stays loaded after its last call.
	DefaultRetireAfter = time.Hour
	// DefaultDrainTimeout bounds waiting for in-flight calls when a version is unloaded.
	DefaultDrainTimeout = 30 * time.Second
	// historyLimit is how many events are kept per plugin.
	historyLimit = 200
	// shadowDiffLimit is how many recent shadow differences are kept per plugin.
	shadowDiffLimit = 20
)

// Config configures a Manager. Runtime and Schemas are required.
type Config struct {
	// Runtime loads the modules.
	Runtime *plugins.Runtime
	// Schemas validates plugin outputs in the gate and, for versions on probation, on live calls.
	Schemas *schemas.Set
	// Dir is the plugins directory LoadDir and Run scan. Empty: no directory (uploads only).
	Dir string
	// Verify are the trust settings: trusted keys, development mode, module size limit.
	Verify VerifyOptions
	// KeepVersions is how many previously active versions stay loaded per plugin. 0 means
	// DefaultKeepVersions; negative keeps none (an old version is drained and closed right after a swap).
	KeepVersions int
	// CanaryPercent, when between 1 and 100, makes a bundle dropped into Dir start as a canary with this
	// share of new checkouts (when the plugin already has an active version), instead of being activated.
	CanaryPercent int
	// RollbackErrors, RollbackErrorRate and ProbationCalls arm the automatic rollback: a canary, or a
	// version activated over another, is rolled back once it fails RollbackErrors calls that are also at
	// least RollbackErrorRate of its calls, within its first ProbationCalls calls (a canary stays on
	// probation until it is promoted). Zero values mean the defaults.
	RollbackErrors    int
	RollbackErrorRate float64
	ProbationCalls    int
	// RollbackErrorRate is also the margin: a version is rolled back only when its failure rate exceeds
	// its baseline's (the active version for a canary, the replaced version for an activated one) by at
	// least that much. RollbackLatencyFactor and RollbackLatencyMin roll back a version on probation
	// whose p99 call latency, over at least LatencyMinCalls calls, exceeds its baseline's by both the
	// factor and the duration. Zero values mean DefaultRollbackLatencyFactor, DefaultRollbackLatencyMin
	// and DefaultLatencyMinCalls.
	RollbackLatencyFactor float64
	RollbackLatencyMin    time.Duration
	LatencyMinCalls       int
	// GateSlowdownFactor and GateSlowdownMin refuse a version whose gate (the same vectors run on the new
	// and the active version) takes longer than the active version's by both the factor and, per vector
	// on average, the duration. Zero values mean DefaultGateSlowdownFactor and DefaultGateSlowdownMin.
	GateSlowdownFactor float64
	GateSlowdownMin    time.Duration
	// WatchInterval is how often Run scans Dir. 0 means DefaultWatchInterval.
	WatchInterval time.Duration
	// RetireAfter is how long a version whose bundle file was removed from Dir keeps serving the
	// sessions it started, counted from its last call, before a scan unloads it. 0 means
	// DefaultRetireAfter; negative unloads at the first scan after the removal.
	RetireAfter time.Duration
	// DrainTimeout bounds waiting for in-flight calls on unload. 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Logger receives one line per event. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Manager holds every version of every plugin and decides which one serves. It implements
// checkout.Plugins. It is safe for concurrent use; the call path takes no lock besides the read lock of
// the version it calls.
type Manager struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	// mu serialises control operations (stage, activate, canary, shadow, rollback, unload decisions).
	mu sync.Mutex
	// startTimes is what LoadDir spent per bundle; set under mu.
	startTimes []BundleTimes
	// states maps plugin names to their state; copy-on-write under mu, read without locking.
	states atomic.Pointer[map[string]*pluginState]
	// strays are refusals of bundles whose plugin name is unknown (no readable manifest).
	strays []Event
	// seen are the directory fingerprints already processed, by stem; pending those seen once.
	seen, pending map[string]string
	// stems maps a bundle's file stem in Dir to the version it holds, for unloading deleted files.
	stems map[string]stemRef
	// saved is the state file as read at start (decisions of an earlier run), by plugin name.
	saved map[string]*savedPlugin
	// stateFP fingerprints the state file as this instance last wrote or read it (see syncState).
	stateFP string
	// verdicts are the bundles that passed the gate, by verdictKey (verdict.go); guarded by mu.
	verdicts map[string]*savedVerdict
	// stateErrors counts state files that could not be read or written.
	stateErrors atomic.Uint64
	// skipped counts bundles in Dir refused, or skipped as quarantined, at start or by the watcher.
	skipped atomic.Uint64

	bg     sync.WaitGroup
	closed atomic.Bool
}

// pluginState is everything about one plugin name.
type pluginState struct {
	name string
	// active serves new checkouts (besides the canary share) and sessions whose version is not loaded.
	active atomic.Pointer[version]
	canary atomic.Pointer[canarySplit]
	shadow atomic.Pointer[shadowRun]
	// loaded maps version strings to loaded versions; copy-on-write under Manager.mu.
	loaded atomic.Pointer[map[string]*version]

	// Guarded by Manager.mu.
	versions       map[string]*version
	previous       []*version // previously active versions, most recent last
	history        []Event
	lastActivation time.Time
	// highest is the highest version ever activated (SemVer order), persisted with the decisions.
	highest   string
	lastError string
	warn      bool
	// quarantined are the versions rolled back, by version: they do not serve again unless forced.
	quarantined map[string]Quarantine
}

// stemRef names the version a bundle file in Dir holds.
type stemRef struct{ name, version string }

type canarySplit struct {
	v       *version
	percent int
}

func (m *Manager) statesMap() map[string]*pluginState {
	if p := m.states.Load(); p != nil {
		return *p
	}
	return nil
}

func (m *Manager) state(name string) *pluginState { return m.statesMap()[name] }

// New returns a Manager. It loads nothing; call LoadDir to load the plugins directory.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Runtime == nil:
		return nil, errors.New("upgrade: config: Runtime is required")
	case cfg.Schemas == nil:
		return nil, errors.New("upgrade: config: Schemas is required")
	case cfg.CanaryPercent < 0 || cfg.CanaryPercent > 100:
		return nil, fmt.Errorf("upgrade: config: CanaryPercent %d out of range 0..100", cfg.CanaryPercent)
	case cfg.RollbackErrorRate < 0 || cfg.RollbackErrorRate > 1:
		return nil, fmt.Errorf("upgrade: config: RollbackErrorRate %v out of range 0..1", cfg.RollbackErrorRate)
	}
	if cfg.KeepVersions == 0 {
		cfg.KeepVersions = DefaultKeepVersions
	}
	if cfg.RetireAfter == 0 {
		cfg.RetireAfter = DefaultRetireAfter
	}
	if cfg.RollbackErrors <= 0 {
		cfg.RollbackErrors = DefaultRollbackErrors
	}
	if cfg.RollbackErrorRate == 0 {
		cfg.RollbackErrorRate = DefaultRollbackErrorRate
	}
	if cfg.ProbationCalls <= 0 {
		cfg.ProbationCalls = DefaultProbationCalls
	}
	if cfg.RollbackLatencyFactor <= 0 {
		cfg.RollbackLatencyFactor = DefaultRollbackLatencyFactor
	}
	if cfg.RollbackLatencyMin <= 0 {
		cfg.RollbackLatencyMin = DefaultRollbackLatencyMin
	}
	if cfg.LatencyMinCalls <= 0 {
		cfg.LatencyMinCalls = DefaultLatencyMinCalls
	}
	if cfg.GateSlowdownFactor <= 0 {
		cfg.GateSlowdownFactor = DefaultGateSlowdownFactor
	}
	if cfg.GateSlowdownMin <= 0 {
		cfg.GateSlowdownMin = DefaultGateSlowdownMin
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = DefaultWatchInterval
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, now: cfg.Now, seen: map[string]string{}, pending: map[string]string{},
		stems: map[string]stemRef{}}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.saved = m.readState()
	m.verdicts = m.readVerdicts()
	if cfg.Dir != "" {
		m.stateFP = stateFingerprint(m.statePath())
	}
	empty := map[string]*pluginState{}
	m.states.Store(&empty)
	return m, nil
}

// Plugin returns the active version of the named plugin. It implements checkout.Plugins.
func (m *Manager) Plugin(name string) (checkout.Plugin, bool) {
	st := m.state(name)
	if st == nil {
		return nil, false
	}
	v := st.active.Load()
	if v == nil {
		return nil, false
	}
	return v, true
}

// PluginForNewCheckout returns the version a new checkout with this session id uses: the canary for its
// share of session ids (a stable hash of the id picks the bucket), the active version otherwise.
func (m *Manager) PluginForNewCheckout(name, sessionID string) (checkout.Plugin, bool) {
	st := m.state(name)
	if st == nil {
		return nil, false
	}
	if c := st.canary.Load(); c != nil && bucket(sessionID) < c.percent {
		return c.v, true
	}
	return m.Plugin(name)
}

// bucket maps a session id to 0..99.
func bucket(id string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % 100)
}

// PluginVersion returns the named version of a plugin while it is loaded and allowed to serve, else the
// active version: a session's later operations use the version that created it when they can.
func (m *Manager) PluginVersion(name, ver string) (checkout.Plugin, bool) {
	st := m.state(name)
	if st == nil {
		return nil, false
	}
	if l := st.loaded.Load(); l != nil {
		if v, ok := (*l)[ver]; ok && !v.banned.Load() {
			return v, true
		}
	}
	return m.Plugin(name)
}

// Names returns the names of the plugins with an active version, sorted.
func (m *Manager) Names() []string {
	var names []string
	for name, st := range m.statesMap() {
		if st.active.Load() != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Ready reports whether the manager serves: it is open and at least one plugin has an active version.
// The host's /readyz uses it.
func (m *Manager) Ready() error {
	if m.closed.Load() {
		return errors.New("upgrade: manager closed")
	}
	if len(m.Names()) == 0 {
		return errors.New("upgrade: no active plugin")
	}
	return nil
}

// Activation says what Apply does with a version that passed its gate.
type Activation struct {
	// Mode is ModeStage, ModeActivate or ModeCanary.
	Mode Mode
	// Percent is the canary's share of new checkouts (ModeCanary), 1..100.
	Percent int
	// Force lets the operator activate (or canary) a version that is not higher than every version ever
	// activated for the plugin. Without it such a version is refused with ErrNotNewer.
	Force bool
}

// Option changes how Activate and Canary treat a version.
type Option func(*options)

type options struct{ force bool }

// Force is the operator's override of the rule that a newly served version must be higher (in SemVer
// order) than every version ever activated for the plugin.
func Force() Option { return func(o *options) { o.force = true } }

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Mode of an Activation.
type Mode string

// Modes.
const (
	// ModeStage keeps the version ready, serving nothing until it is activated.
	ModeStage Mode = "stage"
	// ModeActivate makes it the active version.
	ModeActivate Mode = "activate"
	// ModeCanary gives it a share of new checkouts.
	ModeCanary Mode = "canary"
)

// Sources of an Update that the manager treats specially.
const (
	// SourceDir is a bundle read from the plugins directory.
	SourceDir = "dir"
	// SourceUpload is a bundle uploaded through the admin API; it is saved into the plugins directory.
	SourceUpload = "upload"
)

// Update is one delivery of a plugin bundle, as a fetcher hands it over (OPA's download.Update): the
// directory watcher, an upload, or a test. Err reports a failed fetch; it is recorded and nothing else
// happens.
type Update struct {
	// Source says where it came from, for history: SourceDir, SourceUpload, ... An upload is written into
	// the plugins dir (when there is one) before it may serve.
	Source string
	Bundle Bundle
	Err    error
	// pre is what LoadDir already did with Bundle (preload.go), or nil.
	pre *preloaded
}

// VersionInfo describes one version of a plugin.
type VersionInfo struct {
	Plugin  string `json:"plugin"`
	Version string `json:"version"`
	// State is ready (staged, or a canary or shadow that ended), active, canary, previous (was active,
	// still loaded), unloaded (was active; its bytes are kept for a rollback) or rolled_back.
	State   string         `json:"state"`
	SHA256  string         `json:"sha256"`
	Signed  bool           `json:"signed"`
	KeyID   string         `json:"keyId,omitempty"`
	Source  string         `json:"source,omitempty"`
	Loaded  bool           `json:"loaded"`
	Staged  time.Time      `json:"staged"`
	Calls   uint64         `json:"calls"`
	Failed  uint64         `json:"failed"`
	Ops     []string       `json:"ops"`
	Golden  int            `json:"goldenVectors"`
	Runtime *plugins.Stats `json:"runtime,omitempty"`
	// Refused counts outputs the host refused after a call (host/fence); they are in Failed too.
	Refused uint64 `json:"refused"`
	// Gate is what the gate measured of this version's cost.
	Gate GateCost `json:"gate"`
	// Retiring is set while a version whose bundle file was removed still serves the sessions it started;
	// it is unloaded once it has had no call for the configured retireAfter.
	Retiring bool `json:"retiring,omitempty"`
	// Unchanged is set by Apply when the same bundle was already known and nothing was done.
	Unchanged bool `json:"unchanged,omitempty"`
	// P50 and P99 are the median and 99th percentile latency of the version's recent calls (the last
	// 512); zero before its first call.
	P50 time.Duration `json:"p50Ns,omitempty"`
	P99 time.Duration `json:"p99Ns,omitempty"`
}

// Apply runs an update through verify, load and gate, and then does what act asks. A refused version is a
// *RefusedError; it is recorded in the plugin's history and LastError, and the active version is untouched.
// A bundle identical to a known version changes nothing (VersionInfo.Unchanged).
func (m *Manager) Apply(ctx context.Context, u Update, act Activation) (*VersionInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() {
		return nil, errors.New("upgrade: manager closed")
	}
	v, unchanged, err := m.stage(ctx, u, act.Force)
	if err != nil {
		return nil, err
	}
	if u.Source == SourceUpload && m.cfg.Dir != "" && !unchanged {
		// An upload outlives a restart: it is written into the plugins dir before it may serve.
		stem, err := m.writeBundle(v)
		if err != nil {
			m.log.Error("uploaded plugin not saved; it stays staged", "plugin", v.manifest.Name, "version", v.manifest.Version, "err", err)
			return nil, err
		}
		if fp, err := fingerprint(m.cfg.Dir, stem); err == nil {
			m.seen[stem] = fp
		}
		m.stems[stem] = stemRef{v.manifest.Name, v.manifest.Version}
		v.source = SourceUpload + " (saved as " + stem + SuffixModule + ")"
	}
	switch act.Mode {
	case ModeActivate:
		if v.st.active.Load() != v {
			if err = m.checkNewer(v, act.Force); err == nil {
				err = m.activate(ctx, v, "activated from "+u.Source)
			}
		}
	case ModeCanary:
		if v.st.active.Load() == nil {
			if err = m.checkNewer(v, act.Force); err == nil {
				err = m.activate(ctx, v, "activated from "+u.Source+" (no active version to canary against)")
			}
		} else if c := v.st.canary.Load(); v.st.active.Load() != v && (c == nil || c.v != v || c.percent != act.Percent) {
			if err = m.checkNewer(v, act.Force); err == nil {
				err = m.setCanary(ctx, v, act.Percent)
			}
		}
	case ModeStage, "":
	default:
		err = fmt.Errorf("upgrade: unknown activation mode %q", act.Mode)
	}
	if err != nil {
		return nil, err
	}
	info := v.info()
	info.Unchanged = unchanged
	return &info, nil
}

// stage verifies, loads and gates an update and records the version as ready. Callers hold m.mu.
func (m *Manager) stage(ctx context.Context, u Update, force bool) (_ *version, unchanged bool, err error) {
	name, ver := u.Bundle.Stem, ""
	defer func() {
		if err != nil {
			var re *RefusedError
			if errors.As(err, &re) && re.Plugin != "" {
				name, ver = re.Plugin, re.Version
			}
			m.recordRefusal(name, ver, u.Source, err)
		}
	}()
	if u.Err != nil {
		return nil, false, fmt.Errorf("upgrade: fetch %s from %s: %w", u.Bundle.Stem, u.Source, u.Err)
	}
	var verified *Verified
	if pre := u.pre; pre != nil && (pre.verified != nil || pre.verifyErr != nil) {
		verified, err = pre.verified, pre.verifyErr
	} else {
		verified, err = Verify(u.Bundle, m.cfg.Verify)
	}
	if err != nil {
		return nil, false, err
	}
	name, ver = verified.Manifest.Name, verified.Manifest.Version
	st := m.state(name)
	if q, ok := m.quarantinedVersion(name, ver); ok && !force {
		return nil, false, &RefusedError{Plugin: name, Version: ver, Rule: RuleQuarantined,
			Err: fmt.Errorf("rolled back at %s (%s); upload it with force to serve it again", q.At.Format(time.RFC3339), q.Reason)}
	}
	if st != nil {
		if old, ok := st.versions[ver]; ok {
			if old.manifest.SHA256 == verified.Manifest.SHA256 && old.goldenSHA == verified.Manifest.GoldenSHA256 {
				old.retiring = "" // its file is back
				return old, true, nil
			}
			return nil, false, &RefusedError{Plugin: name, Version: ver, Rule: RuleConflict,
				Err: fmt.Errorf("version already known with module digest %s", old.manifest.SHA256)}
		}
	}
	var active *version
	lctx := ctx
	if st != nil {
		if active = st.active.Load(); active != nil {
			lctx = plugins.Background(ctx) // compile beside live calls without taking every core
		}
	}
	p, err, preloaded := u.pre.take(verified)
	if !preloaded {
		p, err = m.loadVerified(lctx, verified)
	}
	if re := (*RefusedError)(nil); errors.As(err, &re) { // the module's ABI version is not the manifest's
		return nil, false, err
	}
	if err != nil {
		return nil, false, &RefusedError{Plugin: name, Version: ver, Rule: RuleLoad, Err: err}
	}
	// A bundle that passed the gate before (same digests, same host build) does not run its vectors again
	// (verdict.go); with an active version to compare with, its cost is still measured against that one.
	key, keyErr := verdictKey(verified)
	var prior *savedVerdict
	if keyErr == nil {
		prior, _ = m.passedGate(key)
	}
	// LoadDir may have run the gate already, in parallel with the other bundles (preload.go), on this
	// very plugin and with no active version to compare with.
	gated := preloaded && u.pre.gated && active == nil && prior == nil
	var cost GateCost
	switch {
	case prior != nil && active == nil:
		cost = prior.Cost
	case gated:
		cost = u.pre.cost
	default:
		// Cost first: a much slower version is refused after a few vectors instead of after all of them.
		if cost, err = m.measure(ctx, p, active, verified); err != nil {
			_ = p.Close(context.WithoutCancel(ctx))
			return nil, false, err
		}
	}
	if prior == nil {
		var err error
		if gated {
			err = u.pre.gateErr
		} else {
			gateStart := time.Now()
			err = Gate(ctx, p, verified, m.cfg.Schemas)
			if u.pre != nil {
				u.pre.times.Gate = time.Since(gateStart)
			}
		}
		if err != nil {
			_ = p.Close(context.WithoutCancel(ctx))
			return nil, false, err
		}
		if keyErr == nil {
			m.rememberPass(key, verified, cost)
		}
	}
	if st == nil {
		st = &pluginState{name: name, versions: map[string]*version{}, quarantined: map[string]Quarantine{}}
		if sp := m.saved[name]; sp != nil {
			st.highest = sp.Highest
			st.history = slices.Clone(sp.History)
			for _, q := range sp.Quarantined {
				st.quarantined[q.Version] = q
			}
		}
		next := map[string]*pluginState{}
		for k, s := range m.statesMap() {
			next[k] = s
		}
		next[name] = st
		m.states.Store(&next)
	}
	v := &version{m: m, st: st, manifest: verified.Manifest, goldenSHA: verified.Manifest.GoldenSHA256,
		verified: verified, source: u.Source, staged: m.now(), p: p, state: stateReady, gateCost: cost}
	st.versions[ver] = v
	m.setLoaded(st, v, true)
	detail := "passed " + strconv.Itoa(len(verified.Golden)) + " golden vectors and the conformance vectors; " + cost.String()
	if prior != nil {
		detail = "passed the gate at " + prior.At.UTC().Format(time.RFC3339) + " (verdict remembered by digest, vectors not run again); " + cost.String()
	}
	if verified.Signed {
		detail += "; signed by " + verified.KeyID
	} else {
		detail += "; unsigned (development mode)"
	}
	m.event(st, Event{Action: ActionStaged, Version: ver, Detail: detail + "; from " + u.Source})
	return v, false, nil
}

func (m *Manager) recordRefusal(name, ver, source string, err error) {
	e := Event{At: m.now(), Action: ActionRefused, Version: ver, Detail: err.Error() + "; from " + source}
	m.log.Warn("plugin version refused", "plugin", name, "version", ver, "source", source, "err", err)
	if st := m.state(name); st != nil {
		st.lastError = err.Error()
		st.warn = true
		m.event(st, e)
		return
	}
	e.Plugin = name
	m.strays = append(m.strays, e)
	if len(m.strays) > historyLimit {
		m.strays = m.strays[len(m.strays)-historyLimit:]
	}
}

func (m *Manager) event(st *pluginState, e Event) {
	if e.At.IsZero() {
		e.At = m.now()
	}
	e.Plugin = st.name
	st.history = append(st.history, e)
	if len(st.history) > historyLimit {
		st.history = st.history[len(st.history)-historyLimit:]
	}
	switch e.Action {
	case ActionRefused:
	case ActionRolledBack:
		m.log.Warn("plugin "+string(e.Action), "plugin", st.name, "version", e.Version, "from", e.From, "detail", e.Detail)
	default:
		m.log.Info("plugin "+string(e.Action), "plugin", st.name, "version", e.Version, "from", e.From, "detail", e.Detail)
	}
	m.saveState()
}

// quarantinedVersion reports whether name@ver was rolled back and not forced back since. Callers hold m.mu.
func (m *Manager) quarantinedVersion(name, ver string) (Quarantine, bool) {
	if st := m.state(name); st != nil {
		q, ok := st.quarantined[ver]
		return q, ok
	}
	if sp := m.saved[name]; sp != nil {
		for _, q := range sp.Quarantined {
			if q.Version == ver {
				return q, true
			}
		}
	}
	return Quarantine{}, false
}

// setLoaded adds v to (or removes it from) the versions the call path can find. Callers hold m.mu.
func (m *Manager) setLoaded(st *pluginState, v *version, loaded bool) {
	next := map[string]*version{}
	if l := st.loaded.Load(); l != nil {
		for k, x := range *l {
			next[k] = x
		}
	}
	if loaded {
		next[v.manifest.Version] = v
	} else {
		delete(next, v.manifest.Version)
	}
	st.loaded.Store(&next)
}

// lookup finds a version for a control operation. Callers hold m.mu.
func (m *Manager) lookup(name, ver string) (*version, error) {
	st := m.state(name)
	if st == nil {
		return nil, fmt.Errorf("upgrade: plugin[%s]: %w", name, ErrUnknownPlugin)
	}
	v, ok := st.versions[ver]
	if !ok {
		return nil, fmt.Errorf("upgrade: plugin[%s]@%s: %w", name, ver, ErrUnknownVersion)
	}
	return v, nil
}

// Activate makes a staged (or earlier) version the active one. Calls in flight finish on the version they
// started on; new checkouts and sessions without a loaded version of their own use the new one. A
// version that was rolled back may be activated again by this explicit call. A version that is not higher
// than every version ever activated for the plugin is refused with ErrNotNewer unless opts has Force
// (going back to the previous version is Rollback's job).
func (m *Manager) Activate(ctx context.Context, name, ver string, opts ...Option) error {
	o := collect(opts)
	why := "activated by request"
	if o.force {
		why += " (forced)"
	}
	return m.activateNamed(ctx, name, ver, why, o.force)
}

func (m *Manager) activateNamed(ctx context.Context, name, ver, why string, force bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.lookup(name, ver)
	if err != nil {
		return err
	}
	if v.st.active.Load() == v {
		return nil
	}
	if err := m.checkNewer(v, force); err != nil {
		return err
	}
	return m.activate(ctx, v, why)
}

// checkNewer refuses, unless forced, a version that was rolled back (quarantined) or is lower than a
// version ever activated for its plugin (here or, through the state file, by another instance; the highest
// itself may be activated again). Development modules without a SemVer version are not ordered. Callers
// hold m.mu.
func (m *Manager) checkNewer(v *version, force bool) error {
	if force {
		return nil
	}
	if q, ok := v.st.quarantined[v.manifest.Version]; ok {
		return fmt.Errorf("upgrade: plugin[%s]@%s: rolled back at %s (%s); force it to serve it again: %w",
			v.st.name, v.manifest.Version, q.At.Format(time.RFC3339), q.Reason, ErrRefusedVersion)
	}
	hi := v.st.highest
	if hi == "" || !isSemVer(v.manifest.Version) || !isSemVer(hi) {
		return nil
	}
	if compareVersions(v.manifest.Version, hi) < 0 {
		return fmt.Errorf("upgrade: plugin[%s]@%s: not higher than %s, activated before: %w",
			v.st.name, v.manifest.Version, hi, ErrNotNewer)
	}
	return nil
}

// activate swaps v in. Callers hold m.mu.
func (m *Manager) activate(ctx context.Context, v *version, why string) error {
	if err := m.ensureLoaded(ctx, v); err != nil {
		return err
	}
	st := v.st
	v.banned.Store(false)
	delete(st.quarantined, v.manifest.Version)
	if c := st.canary.Load(); c != nil {
		st.canary.Store(nil)
		if c.v != v {
			c.v.state = stateReady
		}
	}
	if sh := st.shadow.Load(); sh != nil && sh.v == v {
		m.stopShadow(st)
	}
	old := st.active.Swap(v)
	from := ""
	if old != nil {
		from = old.manifest.Version
		old.state = statePrevious
		old.probation.Store(false)
		st.previous = slices.DeleteFunc(st.previous, func(x *version) bool { return x == old || x == v })
		st.previous = append(st.previous, old)
		v.startProbation(m.cfg.ProbationCalls, old)
	} else {
		st.previous = slices.DeleteFunc(st.previous, func(x *version) bool { return x == v })
	}
	v.state = stateActive
	if st.highest == "" || compareVersions(v.manifest.Version, st.highest) > 0 {
		st.highest = v.manifest.Version
	}
	st.lastActivation = m.now()
	st.lastError, st.warn = "", false
	m.event(st, Event{Action: ActionActivated, Version: v.manifest.Version, From: from, Detail: why})
	m.evict(st)
	return nil
}

// Canary sends percent (1..100) of new checkouts to a version that is not the active one; percent 0 ends
// the canary (as Rollback does, without marking the version). The canary is on probation: past the
// rollback threshold it is rolled back by itself.
func (m *Manager) Canary(ctx context.Context, name, ver string, percent int, opts ...Option) error {
	o := collect(opts)
	m.mu.Lock()
	defer m.mu.Unlock()
	if percent < 0 || percent > 100 {
		return fmt.Errorf("upgrade: canary percent %d out of range 0..100", percent)
	}
	v, err := m.lookup(name, ver)
	if err != nil {
		return err
	}
	if percent == 0 {
		if c := v.st.canary.Load(); c != nil && c.v == v {
			v.st.canary.Store(nil)
			v.state = stateReady
			m.event(v.st, Event{Action: ActionCanaryEnded, Version: ver, Detail: "canary ended by request"})
			m.evict(v.st)
		}
		return nil
	}
	switch a := v.st.active.Load(); {
	case a == nil:
		return fmt.Errorf("upgrade: plugin[%s]: no active version to canary against; activate one first", name)
	case a == v:
		return fmt.Errorf("upgrade: plugin[%s]@%s is already active", name, ver)
	}
	if err := m.checkNewer(v, o.force); err != nil {
		return err
	}
	return m.setCanary(ctx, v, percent)
}

func (m *Manager) setCanary(ctx context.Context, v *version, percent int) error {
	if percent < 1 || percent > 100 {
		return fmt.Errorf("upgrade: canary percent %d out of range 1..100", percent)
	}
	if err := m.ensureLoaded(ctx, v); err != nil {
		return err
	}
	st := v.st
	if c := st.canary.Load(); c != nil && c.v != v {
		c.v.state = stateReady
		c.v.probation.Store(false)
	}
	v.banned.Store(false)
	delete(st.quarantined, v.manifest.Version)
	v.state = stateCanary
	v.startProbation(0, nil)
	st.canary.Store(&canarySplit{v: v, percent: percent})
	m.event(st, Event{Action: ActionCanary, Version: v.manifest.Version, From: st.active.Load().manifest.Version,
		Detail: strconv.Itoa(percent) + "% of new checkouts"})
	m.evict(st)
	return nil
}

// Rollback ends the canary when there is one; otherwise it reactivates the previously active version.
// The version rolled back from serves nothing more (its sessions go to the active version) until it is
// activated again explicitly. It fails with ErrNoPrevious when there is nothing to go back to.
func (m *Manager) Rollback(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state(name)
	if st == nil {
		return fmt.Errorf("upgrade: plugin[%s]: %w", name, ErrUnknownPlugin)
	}
	return m.rollback(ctx, st, nil, "rolled back by request")
}

// rollback rolls back bad (the canary or the active version; nil: whichever rollback applies). Callers hold m.mu.
func (m *Manager) rollback(ctx context.Context, st *pluginState, bad *version, why string) error {
	if c := st.canary.Load(); c != nil && (bad == nil || bad == c.v) {
		st.canary.Store(nil)
		c.v.state = stateRolledBack
		c.v.banned.Store(true)
		c.v.probation.Store(false)
		m.quarantine(c.v, why)
		m.event(st, Event{Action: ActionRolledBack, Version: st.active.Load().manifest.Version,
			From: c.v.manifest.Version, Detail: why + " (canary ended)"})
		m.evict(st)
		return nil
	}
	cur := st.active.Load()
	if cur == nil || (bad != nil && bad != cur) {
		return fmt.Errorf("upgrade: plugin[%s]: %w", st.name, ErrNoPrevious)
	}
	for len(st.previous) > 0 {
		prev := st.previous[len(st.previous)-1]
		st.previous = st.previous[:len(st.previous)-1]
		if prev.banned.Load() {
			continue
		}
		if err := m.ensureLoaded(ctx, prev); err != nil {
			m.log.Warn("rollback target does not load", "plugin", st.name, "version", prev.manifest.Version, "err", err)
			continue
		}
		st.active.Store(prev)
		prev.state = stateActive
		cur.state = stateRolledBack
		cur.banned.Store(true)
		cur.probation.Store(false)
		m.quarantine(cur, why)
		st.lastActivation = m.now()
		m.event(st, Event{Action: ActionRolledBack, Version: prev.manifest.Version, From: cur.manifest.Version, Detail: why})
		m.evict(st)
		return nil
	}
	return fmt.Errorf("upgrade: plugin[%s]@%s: %w", st.name, cur.manifest.Version, ErrNoPrevious)
}

// autoRollback is started by a call that pushed v over a threshold; reason says which.
func (m *Manager) autoRollback(v *version, reason string) {
	defer m.bg.Done()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() || !v.probation.Load() {
		return
	}
	why := "rolled back automatically: " + reason
	if err := m.rollback(context.Background(), v.st, v, why); err != nil {
		m.log.Error("automatic rollback impossible", "plugin", v.st.name, "version", v.manifest.Version, "err", err)
		v.st.lastError, v.st.warn = why+", but: "+err.Error(), true
		return
	}
	v.st.lastError, v.st.warn = fmt.Sprintf("plugin[%s]@%s %s", v.st.name, v.manifest.Version, why), true
}

// loadVerified loads a verified bundle's module and checks that the module reports the ABI version its
// manifest declares (RuleABIVersion): the host encodes inputs in the module's version, and a manifest that
// says otherwise was built wrong. An unsigned development module's manifest takes the module's version.
func (m *Manager) loadVerified(ctx context.Context, v *Verified) (*plugins.Plugin, error) {
	p, err := m.cfg.Runtime.Load(ctx, v.Manifest.Name, v.Manifest.Version, v.Bundle.Module)
	if err != nil {
		return nil, err
	}
	if err := MatchABIVersion(v, p); err != nil {
		_ = p.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return p, nil
}

// MatchABIVersion checks that p, loaded from v's module, reports the ABI version v's manifest declares, and
// refuses it (RuleABIVersion) otherwise. An unsigned development module's manifest, which declares none,
// takes the module's.
func MatchABIVersion(v *Verified, p *plugins.Plugin) error {
	mf := &v.Manifest
	if mf.ABIVersion == 0 && len(v.Bundle.Manifest) == 0 {
		mf.ABIVersion = p.ABIVersion()
	}
	if got := p.ABIVersion(); got != mf.ABIVersion {
		return &RefusedError{Plugin: mf.Name, Version: mf.Version, Rule: RuleABIVersion,
			Err: fmt.Errorf("manifest abiVersion %d, but the module reports %d", mf.ABIVersion, got)}
	}
	return nil
}

// ensureLoaded loads v's module again when it was unloaded (the compilation cache makes this fast). Callers
// hold m.mu.
func (m *Manager) ensureLoaded(ctx context.Context, v *version) error {
	if job := v.unloading; job != nil {
		<-job.done // an unload in progress finishes first: it would otherwise close what we keep
		m.recordUnload(v, job)
		v.unloading = nil
	}
	v.mu.RLock()
	loaded := v.p != nil
	v.mu.RUnlock()
	if loaded {
		return nil
	}
	p, err := m.loadVerified(ctx, v.verified)
	if err != nil {
		return fmt.Errorf("upgrade: reload plugin[%s]@%s: %w", v.manifest.Name, v.manifest.Version, err)
	}
	v.mu.Lock()
	v.p = p
	v.mu.Unlock()
	m.setLoaded(v.st, v, true)
	return nil
}

// evict unloads the versions that need not stay loaded: everything but the active version, the canary,
// the shadow, versions staged and never activated, and the KeepVersions most recent previous versions.
// Unloading drains in the background. Callers hold m.mu.
func (m *Manager) evict(st *pluginState) {
	keep := map[*version]bool{}
	if a := st.active.Load(); a != nil {
		keep[a] = true
	}
	if c := st.canary.Load(); c != nil {
		keep[c.v] = true
	}
	if sh := st.shadow.Load(); sh != nil {
		keep[sh.v] = true
	}
	n := max(m.cfg.KeepVersions, 0)
	for i := len(st.previous) - 1; i >= 0 && n > 0; i-- {
		if !st.previous[i].banned.Load() {
			keep[st.previous[i]] = true
			n--
		}
	}
	for _, v := range st.versions {
		if keep[v] || (v.state == stateReady && !v.banned.Load()) {
			continue
		}
		v.mu.RLock()
		loaded := v.p != nil
		v.mu.RUnlock()
		if !loaded {
			continue
		}
		m.setLoaded(st, v, false)
		if v.state == statePrevious {
			v.state = stateUnloaded
		}
		job := &unloadJob{done: make(chan struct{})}
		v.unloading = job
		m.bg.Add(1)
		go m.unload(v, job)
	}
}

// unload drains v (waits for the calls holding it) and closes its instances.
func (m *Manager) unload(v *version, job *unloadJob) {
	defer m.bg.Done()
	start := time.Now()
	v.mu.Lock()
	p := v.p
	v.p = nil
	v.mu.Unlock()
	if p != nil {
		drained := time.Since(start)
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.DrainTimeout)
		err := p.Close(ctx)
		cancel()
		job.detail = "drained in " + drained.Round(time.Microsecond).String()
		if err != nil {
			job.detail += "; close: " + err.Error()
		}
	}
	close(job.done)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recordUnload(v, job)
}

// unloadJob is an unload in progress. Its event is recorded once, by the unload or by a reload waiting
// for it, whichever holds Manager.mu first, so that the history keeps the order of what happened.
type unloadJob struct {
	done     chan struct{}
	detail   string // set before done is closed
	recorded bool   // guarded by Manager.mu
}

// recordUnload records a finished unload's event once. Callers hold m.mu.
func (m *Manager) recordUnload(v *version, job *unloadJob) {
	if job.recorded || job.detail == "" {
		return
	}
	job.recorded = true
	m.event(v.st, Event{Action: ActionUnloaded, Version: v.manifest.Version, Detail: job.detail})
}

// Close stops shadows, waits for unloads and rollbacks in progress and closes every loaded version. The
// runtime itself is the caller's to close.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed.Swap(true) {
		m.mu.Unlock()
		return nil
	}
	var all []*version
	for _, st := range m.statesMap() {
		m.stopShadow(st)
		for _, v := range st.versions {
			all = append(all, v)
		}
	}
	m.mu.Unlock()
	m.bg.Wait()
	var errs []error
	for _, v := range all {
		v.mu.Lock()
		p := v.p
		v.p = nil
		v.mu.Unlock()
		if p != nil {
			if err := p.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Version states, as VersionInfo.State shows them.
const (
	stateReady      = "ready"
	stateActive     = "active"
	stateCanary     = "canary"
	statePrevious   = "previous"
	stateUnloaded   = "unloaded"
	stateRolledBack = "rolled_back"
)

// version is one loaded (or once loaded) plugin version. It implements checkout.Plugin.
type version struct {
	m         *Manager
	st        *pluginState
	manifest  Manifest
	goldenSHA string
	verified  *Verified
	source    string
	staged    time.Time
	// state is guarded by Manager.mu, and so are unloading, the unload in progress, and retiring, the
	// stem of the removed bundle file while the version still serves its sessions (see Manager.removed).
	state     string
	unloading *unloadJob
	retiring  string
	retiredAt time.Time

	// mu is held for reading by every call and for writing by unload: taking it for writing drains.
	mu sync.RWMutex
	p  *plugins.Plugin

	// banned versions (rolled back) do not serve their sessions; those go to the active version.
	banned atomic.Bool
	// calls and failed count every call through this handle; probation counters count since probation
	// started, and probationLimit (0: unlimited) ends it.
	calls, failed         atomic.Uint64
	lastCall              atomic.Int64 // unix nanoseconds of the last call's start
	probation             atomic.Bool
	probCalls, probFailed atomic.Uint64
	probationLimit        atomic.Uint64
	rollbackStarted       atomic.Bool
	// refused counts outputs the host refused after the call (see Refused); lat the recent latencies;
	// base the version a version on probation is compared with (nil: the active version).
	refused atomic.Uint64
	lat     latencies
	base    atomic.Pointer[version]
	// gateCost is what the gate measured: this version's time per vector against the active version's.
	gateCost GateCost
}

// Name returns the plugin's name.
func (v *version) Name() string { return v.manifest.Name }

// Version returns the version string from the manifest.
func (v *version) Version() string { return v.manifest.Version }

// ABIVersion returns the plugin ABI version from the manifest, which the module reported too (loadVerified).
func (v *version) ABIVersion() int { return v.manifest.ABIVersion }

func (v *version) startProbation(limit int, base *version) {
	v.base.Store(base)
	v.probCalls.Store(0)
	v.probFailed.Store(0)
	v.probationLimit.Store(uint64(max(limit, 0)))
	v.rollbackStarted.Store(false)
	v.probation.Store(true)
}

// Call runs one call on this version, or on the active version when this one was unloaded in the meantime.
func (v *version) Call(ctx context.Context, input []byte) ([]byte, error) {
	cur := v
	for range 3 {
		cur.mu.RLock()
		p := cur.p
		if p == nil {
			cur.mu.RUnlock()
			next := cur.st.active.Load()
			if next == nil || next == cur {
				break
			}
			cur = next
			continue
		}
		start := time.Now()
		cur.lastCall.Store(cur.m.now().UnixNano())
		out, err := p.Call(ctx, input)
		took := time.Since(start)
		cur.mu.RUnlock()
		cur.observe(input, out, err, took, plugins.IsBulk(ctx))
		return out, err
	}
	return nil, &plugins.CallError{Plugin: v.manifest.Name, Version: v.manifest.Version, Kind: plugins.KindBusy,
		Err: fmt.Errorf("version unloaded and no active version: %w", plugins.ErrClosed)}
}

func (v *version) info() VersionInfo {
	v.mu.RLock()
	loaded := v.p != nil
	var stats *plugins.Stats
	if loaded {
		s := v.p.Stats()
		stats = &s
	}
	v.mu.RUnlock()
	p50, p99 := v.lat.quantiles()
	return VersionInfo{P50: p50, P99: p99,
		Plugin: v.manifest.Name, Version: v.manifest.Version, State: v.state, SHA256: v.manifest.SHA256,
		Signed: v.verified.Signed, KeyID: v.verified.KeyID, Source: v.source, Loaded: loaded, Staged: v.staged,
		Calls: v.calls.Load(), Failed: v.failed.Load(), Ops: v.manifest.Ops, Golden: len(v.verified.Golden),
		Runtime: stats, Refused: v.refused.Load(), Gate: v.gateCost, Retiring: v.retiring != "",
	}
}

// compareVersions orders version strings by SemVer 2.0 precedence (golang.org/x/mod/semver): prereleases
// below their release, build metadata ignored. Strings that are not SemVer (development modules'
// "sha256-..." versions) sort below every SemVer version; ties are broken by the text, so that the order is
// total and stable.
func compareVersions(a, b string) int {
	if c := semver.Compare("v"+a, "v"+b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// isSemVer reports whether s is a full SemVer 2.0 version without a "v" (MAJOR.MINOR.PATCH, optional
// prerelease and build).
func isSemVer(s string) bool {
	if !semver.IsValid("v" + s) {
		return false
	}
	// x/mod/semver accepts the shorthands "v1" and "v1.2"; a manifest must spell out all three numbers.
	core, _, _ := strings.Cut(strings.SplitN(s, "+", 2)[0], "-")
	return strings.Count(core, ".") == 2
}

package upgrade

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Action is what an Event records.
type Action string

// Actions in a plugin's history.
const (
	ActionStaged        Action = "staged"
	ActionRefused       Action = "refused"
	ActionActivated     Action = "activated"
	ActionCanary        Action = "canary"
	ActionCanaryEnded   Action = "canary_ended"
	ActionRolledBack    Action = "rolled_back"
	ActionShadow        Action = "shadow"
	ActionShadowStopped Action = "shadow_stopped"
	ActionUnloaded      Action = "unloaded"
	// ActionRemoved: the version's bundle file was deleted from the plugins dir and the version forgotten.
	ActionRemoved Action = "removed"
)

// Event is one entry of a plugin's history. It names versions and rules, never payload values.
type Event struct {
	At     time.Time `json:"at"`
	Plugin string    `json:"plugin"`
	Action Action    `json:"action"`
	// Version is the version the event is about (for activated and rolled_back: the one now serving).
	Version string `json:"version,omitempty"`
	// From is the version that served before, for activated, canary and rolled_back.
	From   string `json:"from,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// State of a plugin, as OPA's plugin status names them.
type State string

// Plugin states.
const (
	// StateNotReady: no version is active.
	StateNotReady State = "NOT_READY"
	// StateOK: a version is active and the last change succeeded.
	StateOK State = "OK"
	// StateWarn: a version is active, but the last update was refused or a version was rolled back by
	// itself; LastError says what happened.
	StateWarn State = "WARN"
)

// Status is a plugin's state for the admin API and readiness.
type Status struct {
	Plugin        string `json:"plugin"`
	State         State  `json:"state"`
	ActiveVersion string `json:"activeVersion,omitempty"`
	// Canary is the canary version and its share, when there is one.
	Canary *CanaryStatus `json:"canary,omitempty"`
	// Shadow reports the version running in shadow and its differences, when there is one.
	Shadow         *ShadowStatus `json:"shadow,omitempty"`
	LastActivation time.Time     `json:"lastActivation"`
	LastError      string        `json:"lastError,omitempty"`
	// Versions lists every version held, newest first.
	Versions []VersionInfo `json:"versions"`
	// Quarantined lists the versions rolled back, which do not serve again unless an operator forces them.
	Quarantined []Quarantine `json:"quarantined,omitempty"`
	// HighestActivated is the highest version ever activated; a new version must be higher unless forced.
	HighestActivated string `json:"highestActivated,omitempty"`
}

// CanaryStatus is the canary's version and share of new checkouts.
type CanaryStatus struct {
	Version string `json:"version"`
	Percent int    `json:"percent"`
	Calls   uint64 `json:"calls"`
	Failed  uint64 `json:"failed"`
}

// Status returns the named plugin's status.
func (m *Manager) Status(name string) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state(name)
	if st == nil {
		return Status{}, fmt.Errorf("upgrade: plugin[%s]: %w", name, ErrUnknownPlugin)
	}
	return m.status(st), nil
}

// Statuses returns every plugin's status, by name order.
func (m *Manager) Statuses() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Status
	for _, st := range m.statesMap() {
		out = append(out, m.status(st))
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Plugin, b.Plugin) })
	return out
}

// status builds a Status. Callers hold m.mu.
func (m *Manager) status(st *pluginState) Status {
	s := Status{Plugin: st.name, State: StateNotReady, LastActivation: st.lastActivation, LastError: st.lastError}
	if a := st.active.Load(); a != nil {
		s.ActiveVersion = a.manifest.Version
		s.State = StateOK
		if st.warn {
			s.State = StateWarn
		}
	}
	if c := st.canary.Load(); c != nil {
		s.Canary = &CanaryStatus{Version: c.v.manifest.Version, Percent: c.percent, Calls: c.v.probCalls.Load(),
			Failed: c.v.probFailed.Load()}
	}
	if sh := st.shadow.Load(); sh != nil {
		ss := sh.status()
		s.Shadow = &ss
	}
	for _, v := range st.versions {
		s.Versions = append(s.Versions, v.info())
	}
	for _, q := range st.quarantined {
		s.Quarantined = append(s.Quarantined, q)
	}
	slices.SortFunc(s.Quarantined, func(a, b Quarantine) int { return compareVersions(a.Version, b.Version) })
	s.HighestActivated = st.highest
	slices.SortFunc(s.Versions, func(a, b VersionInfo) int {
		if c := b.Staged.Compare(a.Staged); c != 0 {
			return c
		}
		return compareVersions(b.Version, a.Version)
	})
	return s
}

// History returns the named plugin's events, oldest first. Refusals of bundles whose name could not be
// read are under the name "" (or their file stem).
func (m *Manager) History(name string) ([]Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state(name)
	if st == nil {
		var strays []Event
		for _, e := range m.strays {
			if e.Plugin == name {
				strays = append(strays, e)
			}
		}
		if len(strays) == 0 {
			return nil, fmt.Errorf("upgrade: plugin[%s]: %w", name, ErrUnknownPlugin)
		}
		return strays, nil
	}
	return slices.Clone(st.history), nil
}

// Refusals returns the refusals of bundles that never became a known plugin (no readable manifest, or the
// first version of a name was refused), oldest first.
func (m *Manager) Refusals() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.strays)
}

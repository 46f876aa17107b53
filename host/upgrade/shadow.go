package upgrade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

// shadowQueue is how many live calls may wait for the shadow; more are dropped (counted), so the shadow
// never slows the live path.
const shadowQueue = 16

// ShadowStatus reports a shadow run: how many live calls it replayed and how many gave another answer.
type ShadowStatus struct {
	Version string `json:"version"`
	// Compared counts live calls replayed on the shadow; Differed those whose outputs differ as JSON.
	Compared uint64 `json:"compared"`
	Differed uint64 `json:"differed"`
	// Errors counts shadow calls that failed, or whose output failed its schema, where the live one did not.
	Errors uint64 `json:"errors"`
	// Dropped counts live calls not replayed because the shadow was busy.
	Dropped uint64 `json:"dropped"`
	// Recent are the latest differences, newest last.
	Recent []ShadowDiff `json:"recent,omitempty"`
}

// ShadowDiff is one difference: the operation and the JSON pointers at which the outputs differ, without
// the values (outputs carry personal data).
type ShadowDiff struct {
	At       time.Time `json:"at"`
	Op       string    `json:"op"`
	Pointers []string  `json:"pointers,omitempty"`
	// Error is the shadow's failure, when it failed.
	Error string `json:"error,omitempty"`
}

// shadowRun replays the active version's successful live calls on another version in the background.
type shadowRun struct {
	v      *version
	set    *schemas.Set
	now    func() time.Time
	queue  chan shadowItem
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool

	compared, differed, errs, dropped atomic.Uint64
	mu                                sync.Mutex
	recent                            []ShadowDiff
}

type shadowItem struct {
	input, out []byte
}

// offer queues a live call for the shadow, or drops it when the queue is full.
func (s *shadowRun) offer(input, out []byte, err error) {
	if err != nil || s.closed.Load() {
		return
	}
	select {
	case s.queue <- shadowItem{input: bytes.Clone(input), out: out}:
	default:
		s.dropped.Add(1)
	}
}

func (s *shadowRun) run(timeout time.Duration) {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case it := <-s.queue:
			s.compare(it, timeout)
		}
	}
}

func (s *shadowRun) compare(it shadowItem, timeout time.Duration) {
	op := inputOp(it.input)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s.v.mu.RLock()
	p := s.v.p
	if p == nil {
		s.v.mu.RUnlock()
		return
	}
	got, err := p.Call(ctx, it.input)
	s.v.mu.RUnlock()
	s.compared.Add(1)
	if err == nil {
		if verr := s.set.Validate(schemas.PluginOutput, got); verr != nil {
			err = fmt.Errorf("output fails its schema: %w", verr)
		}
	}
	if err != nil {
		s.errs.Add(1)
		s.note(ShadowDiff{At: s.now(), Op: op, Error: err.Error()})
		return
	}
	if eq, _ := sameJSON(got, it.out); !eq {
		s.differed.Add(1)
		s.note(ShadowDiff{At: s.now(), Op: op, Pointers: diffPointers(got, it.out, 5)})
	}
}

// inputOp reads the operation of a live call's input, which is in the active version's encoding (JSON or
// binary): the shadow reports differences by operation.
func inputOp(input []byte) string {
	if abi.IsBinary(input) {
		var d abi.Decoder
		if in, err := d.Decode(input); err == nil {
			return string(in.Op)
		}
		return ""
	}
	var in struct {
		Op string `json:"op"`
	}
	_ = json.Unmarshal(input, &in)
	return in.Op
}

func (s *shadowRun) note(d ShadowDiff) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recent = append(s.recent, d)
	if len(s.recent) > shadowDiffLimit {
		s.recent = s.recent[len(s.recent)-shadowDiffLimit:]
	}
}

func (s *shadowRun) status() ShadowStatus {
	s.mu.Lock()
	recent := append([]ShadowDiff(nil), s.recent...)
	s.mu.Unlock()
	return ShadowStatus{Version: s.v.manifest.Version, Compared: s.compared.Load(), Differed: s.differed.Load(),
		Errors: s.errs.Load(), Dropped: s.dropped.Load(), Recent: recent}
}

// Shadow runs a version beside the active one: every successful live call of the active version is
// replayed on it in the background (dropped when the shadow is busy), and differences are counted and
// reported in Status. The shadow's answers are never used. Starting a shadow replaces any earlier one.
func (m *Manager) Shadow(ctx context.Context, name, ver string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.lookup(name, ver)
	if err != nil {
		return err
	}
	if v.st.active.Load() == v {
		return fmt.Errorf("upgrade: plugin[%s]@%s is the active version", name, ver)
	}
	if v.banned.Load() {
		return fmt.Errorf("upgrade: plugin[%s]@%s: %w", name, ver, ErrRefusedVersion)
	}
	if err := m.ensureLoaded(ctx, v); err != nil {
		return err
	}
	m.stopShadow(v.st)
	timeout := 10 * time.Second
	s := &shadowRun{v: v, set: m.cfg.Schemas, now: m.now, queue: make(chan shadowItem, shadowQueue),
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(timeout)
	v.st.shadow.Store(s)
	m.event(v.st, Event{Action: ActionShadow, Version: ver, From: v.st.active.Load().manifest.Version,
		Detail: "replaying live calls of the active version"})
	return nil
}

// StopShadow ends the named plugin's shadow run, if any.
func (m *Manager) StopShadow(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state(name)
	if st == nil {
		return fmt.Errorf("upgrade: plugin[%s]: %w", name, ErrUnknownPlugin)
	}
	if st.shadow.Load() == nil {
		return errors.New("upgrade: plugin[" + name + "]: no shadow running")
	}
	m.stopShadow(st)
	m.evict(st)
	return nil
}

// stopShadow ends st's shadow and waits for its replay goroutine. Callers hold m.mu.
func (m *Manager) stopShadow(st *pluginState) {
	s := st.shadow.Swap(nil)
	if s == nil {
		return
	}
	s.closed.Store(true)
	close(s.stop)
	<-s.done
	ss := s.status()
	m.event(st, Event{Action: ActionShadowStopped, Version: ss.Version,
		Detail: fmt.Sprintf("compared %d, differed %d, errors %d, dropped %d", ss.Compared, ss.Differed, ss.Errors, ss.Dropped)})
}

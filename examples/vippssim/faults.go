package vippssim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Faults on command: lost, duplicated, late and reordered callbacks and webhooks, a slow API, and a frozen
// API that holds requests and carries them out later. Random choices come from one source seeded with
// Config.Seed (or Faults.Seed), drawn under the server lock, so a sequential run can be replayed.

// Span is a duration, or a range of durations to pick from uniformly. In JSON it is a string: "500ms"
// (fixed) or "0s..2s" (range); "" or "0s" is no delay.
type Span struct {
	Min, Max time.Duration
}

// ParseSpan parses "d" or "d1..d2" with time.ParseDuration syntax; "" is the zero Span.
func ParseSpan(s string) (Span, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Span{}, nil
	}
	lo, hi, isRange := strings.Cut(s, "..")
	a, err := time.ParseDuration(strings.TrimSpace(lo))
	if err != nil {
		return Span{}, fmt.Errorf("span %q: %w", s, err)
	}
	b := a
	if isRange {
		if b, err = time.ParseDuration(strings.TrimSpace(hi)); err != nil {
			return Span{}, fmt.Errorf("span %q: %w", s, err)
		}
	}
	if a < 0 || b < a {
		return Span{}, fmt.Errorf("span %q: %w", s, errBadSpan)
	}
	return Span{Min: a, Max: b}, nil
}

var errBadSpan = errors.New("want 0 <= min <= max")

// String formats s as ParseSpan reads it.
func (s Span) String() string {
	if s.Min == s.Max {
		return s.Min.String()
	}
	return s.Min.String() + ".." + s.Max.String()
}

// MarshalJSON writes s as a string.
func (s Span) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a string in ParseSpan's syntax.
func (s *Span) UnmarshalJSON(data []byte) error {
	var str string
	if err := json.Unmarshal(data, &str); err != nil {
		return fmt.Errorf("span: want a string such as \"0s..2s\": %w", err)
	}
	v, err := ParseSpan(str)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

func (s Span) pick(r *rand.Rand) time.Duration {
	if s.Max <= s.Min {
		return s.Min
	}
	n := int64(s.Max - s.Min)
	if n < math.MaxInt64 {
		n++ // Max itself may be picked
	}
	return s.Min + time.Duration(r.Int64N(n))
}

// CallbackFaults apply to every eCom callback (Express callbacks included) and every ePayment webhook
// delivery, after CallbackMode and WebhookMode have had their say.
type CallbackFaults struct {
	// Drop is the share (0..1) of callbacks never sent; they are recorded with an error.
	Drop float64 `json:"drop"`
	// Duplicate is the share (0..1) of callbacks sent twice, each copy with its own delay.
	Duplicate float64 `json:"duplicate"`
	// Delay holds each callback back before it is sent.
	Delay Span `json:"delay"`
	// Reorder holds callbacks back in a batch and sends the batch in shuffled order once it holds
	// ReorderBatch callbacks (default 5) or ReorderWindow has passed since the first (default 1s).
	Reorder       bool `json:"reorder"`
	ReorderBatch  int  `json:"reorderBatch,omitempty"`
	ReorderWindow Span `json:"reorderWindow,omitempty"`
}

// Faults is the set of faults in force. The zero value is a well-behaved Vipps.
type Faults struct {
	// Callbacks are the faults of callbacks and webhooks.
	Callbacks CallbackFaults `json:"callbacks"`
	// Latency delays every API answer (not /_sim/): the request takes effect at once and the answer
	// comes later, so a client that gives up has still had its operation carried out.
	Latency Span `json:"latency"`
	// Seed, if not 0, reseeds the random source when the faults are set. Read back, it is the seed in use.
	Seed uint64 `json:"seed,omitempty"`
	// Ledger are the faults of the settlement ledger and the Report API (ledger.go).
	Ledger LedgerFaults `json:"ledger,omitzero"`
}

const (
	defaultReorderBatch  = 5
	defaultReorderWindow = time.Second
)

func (f *Faults) check() error {
	c := &f.Callbacks
	for _, p := range []struct {
		name string
		v    float64
	}{{"callbacks.drop", c.Drop}, {"callbacks.duplicate", c.Duplicate}} {
		if !(p.v >= 0 && p.v <= 1) { // also refuses NaN
			return fmt.Errorf("faults: %s = %v: want a probability from 0 to 1", p.name, p.v)
		}
	}
	if p := f.Ledger.DropCapture; !(p >= 0 && p <= 1) {
		return fmt.Errorf("faults: ledger.dropCapture = %v: want a probability from 0 to 1", p)
	}
	if c.ReorderBatch < 0 {
		return fmt.Errorf("faults: callbacks.reorderBatch = %d: want a positive count", c.ReorderBatch)
	}
	if c.ReorderBatch == 0 {
		c.ReorderBatch = defaultReorderBatch
	}
	if c.ReorderWindow.Max <= 0 {
		c.ReorderWindow = Span{Min: defaultReorderWindow, Max: defaultReorderWindow}
	}
	return nil
}

// faultState is the fault part of a Server. rng, faults, held and pendingOut are guarded by Server.mu;
// the freeze gate has its own lock because held requests wait on it for a long time.
type faultState struct {
	faults     Faults
	seed       uint64
	rng        *rand.Rand
	held       []heldOut // callbacks held for reordering
	heldTimer  bool      // a reorder window timer is running
	pendingOut int       // callbacks waiting out a delay or a reorder batch
	stop       chan struct{}
	timers     sync.WaitGroup // goroutines of delays and reorder windows, waited for by Close

	gateMu  sync.Mutex
	gate    *sync.Cond
	frozen  bool
	closing bool
	ticket  uint64 // next ticket to hand out
	serving uint64 // ticket allowed to run
}

type heldOut struct {
	out   outgoing
	delay time.Duration
}

// outgoing is one callback or webhook delivery before faults are applied.
type outgoing struct {
	send func()              // starts delivery; called with Server.mu held
	drop func(reason string) // records it as not sent; called with Server.mu held
}

func newFaultState(seed uint64) *faultState {
	f := &faultState{seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), stop: make(chan struct{})}
	f.gate = sync.NewCond(&f.gateMu)
	f.faults.Seed = seed
	_ = f.faults.check()
	return f
}

// SetFaults replaces the faults in force. Callbacks held for reordering are sent (shuffled) first.
func (s *Server) SetFaults(f Faults) error {
	if err := f.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseHeldLocked()
	if f.Seed != 0 && f.Seed != s.fs.seed {
		s.fs.seed = f.Seed
		s.fs.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
	}
	f.Seed = s.fs.seed
	s.fs.faults = f
	s.ledgerShowLocked() // a cleared delayDay shows what the Report API held back
	s.log.Info("faults set", "faults", faultsLine(f))
	return nil
}

// ResetFaults removes every fault (the random source keeps its state) and sends held callbacks.
func (s *Server) ResetFaults() { _ = s.SetFaults(Faults{}) }

// Faults returns the faults in force, defaults filled in.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fs.faults
}

func faultsLine(f Faults) string {
	b, _ := json.Marshal(f) // plain struct: cannot fail
	return string(b)
}

// dispatchLocked applies the callback faults to o. Call with s.mu held.
func (s *Server) dispatchLocked(o outgoing) {
	f := s.fs.faults.Callbacks
	if f.Drop > 0 && s.fs.rng.Float64() < f.Drop {
		o.drop("not sent: " + errDroppedByFault.Error())
		return
	}
	copies := 1
	if f.Duplicate > 0 && s.fs.rng.Float64() < f.Duplicate {
		copies = 2
	}
	for range copies {
		d := f.Delay.pick(s.fs.rng)
		if !f.Reorder {
			s.afterLocked(d, o)
			continue
		}
		s.fs.held = append(s.fs.held, heldOut{out: o, delay: d})
		s.fs.pendingOut++
		switch {
		case len(s.fs.held) >= f.ReorderBatch:
			s.releaseHeldLocked()
		case !s.fs.heldTimer:
			s.fs.heldTimer = true
			window := f.ReorderWindow.pick(s.fs.rng)
			s.fs.timers.Add(1)
			go func() {
				defer s.fs.timers.Done()
				select {
				case <-time.After(window):
				case <-s.fs.stop:
				}
				s.mu.Lock()
				s.fs.heldTimer = false
				s.releaseHeldLocked()
				s.mu.Unlock()
			}()
		}
	}
}

var errDroppedByFault = errors.New("dropped by fault injection")

// syncPlan is what the callback faults make of one synchronous call to the merchant (Express
// shippingDetails and consent removal): dropped, or made once or twice, each after its delay. Reorder
// does not apply to a single call.
func (s *Server) syncPlan() (delays []time.Duration, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fs.faults.Callbacks
	if f.Drop > 0 && s.fs.rng.Float64() < f.Drop {
		return nil, true
	}
	delays = []time.Duration{f.Delay.pick(s.fs.rng)}
	if f.Duplicate > 0 && s.fs.rng.Float64() < f.Duplicate {
		delays = append(delays, f.Delay.pick(s.fs.rng))
	}
	return delays, false
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait: %w", ctx.Err())
	}
}

// releaseHeldLocked sends the reorder batch in shuffled order. Call with s.mu held.
func (s *Server) releaseHeldLocked() {
	held := s.fs.held
	s.fs.held = nil
	s.fs.rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
	for _, h := range held {
		s.fs.pendingOut--
		s.afterLocked(h.delay, h.out)
	}
	s.signalIdleLocked()
}

// afterLocked sends o after d. Call with s.mu held.
func (s *Server) afterLocked(d time.Duration, o outgoing) {
	if d <= 0 {
		o.send()
		return
	}
	s.fs.pendingOut++
	s.fs.timers.Add(1)
	go func() {
		defer s.fs.timers.Done()
		select {
		case <-time.After(d):
		case <-s.fs.stop:
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fs.pendingOut--
		if s.closed {
			o.drop("not sent: simulator closed")
		} else {
			o.send()
		}
		s.signalIdleLocked()
	}()
}

// signalIdleLocked wakes Flush when nothing is in flight. Call with s.mu held.
func (s *Server) signalIdleLocked() {
	if s.inflight == 0 && s.fs.pendingOut == 0 {
		s.idle.Broadcast()
	}
}

// Freeze makes the API hang like an overloaded Vipps: from now on every API request (not /_sim/) is
// read, then held unanswered until [Server.Thaw]. Held requests are carried out at thaw in arrival
// order even if their clients gave up, as the real queue did. [Server.Close] ends a freeze too; an
// http.Server's Shutdown (and httptest.Server.Close) waits for held requests, so thaw first.
func (s *Server) Freeze() {
	s.fs.gateMu.Lock()
	defer s.fs.gateMu.Unlock()
	if !s.fs.closing {
		s.fs.frozen = true
	}
	s.log.Info("API frozen")
}

// Thaw ends a freeze: the held requests are carried out one at a time, in arrival order, before any
// request that arrives after them.
func (s *Server) Thaw() {
	s.fs.gateMu.Lock()
	defer s.fs.gateMu.Unlock()
	was := s.fs.frozen
	s.fs.frozen = false
	s.fs.gate.Broadcast()
	if was {
		s.log.Info("API thawed", "held", s.fs.ticket-s.fs.serving)
	}
}

// Held returns how many API requests are waiting in the freeze queue (held, or arrived while held ones
// are still being carried out).
func (s *Server) Held() int {
	s.fs.gateMu.Lock()
	defer s.fs.gateMu.Unlock()
	return int(s.fs.ticket - s.fs.serving)
}

// Frozen reports whether the API is frozen.
func (s *Server) Frozen() bool {
	s.fs.gateMu.Lock()
	defer s.fs.gateMu.Unlock()
	return s.fs.frozen
}

// throughGate holds r while the API is frozen or earlier held requests are still waiting; it returns
// the request to serve (body read into memory, cancellation detached so that a client giving up does not
// stop it) and a function to call once it has been served. For a request that is not held, r itself.
func (s *Server) throughGate(w http.ResponseWriter, r *http.Request) (*http.Request, func()) {
	g := s.fs
	g.gateMu.Lock()
	if !g.frozen && g.ticket == g.serving {
		g.gateMu.Unlock()
		return r, func() {}
	}
	g.gateMu.Unlock()
	// Read the body while the client is still there; a held request must be complete to be carried out.
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	held := r.Clone(context.WithoutCancel(r.Context()))
	held.Body = io.NopCloser(bytes.NewReader(body))
	g.gateMu.Lock()
	me := g.ticket
	g.ticket++
	for (g.frozen && !g.closing) || g.serving != me {
		g.gate.Wait()
	}
	g.gateMu.Unlock()
	return held, func() {
		g.gateMu.Lock()
		g.serving++
		g.gate.Broadcast()
		g.gateMu.Unlock()
	}
}

// stopFaults ends the freeze and sends whatever faults hold back, for Close. Call without s.mu held.
func (s *Server) stopFaults() {
	s.fs.gateMu.Lock()
	s.fs.closing, s.fs.frozen = true, false
	s.fs.gate.Broadcast()
	s.fs.gateMu.Unlock()
	s.mu.Lock()
	s.closed = true // what faults still hold is recorded as not sent
	select {
	case <-s.fs.stop:
	default:
		close(s.fs.stop)
	}
	s.mu.Unlock()
	s.fs.timers.Wait() // they record what they held as not sent
}

// latency returns how long to hold back the answer to an API request.
func (s *Server) latency() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fs.faults.Latency.pick(s.fs.rng)
}

// bufferedWriter keeps an answer until it may be sent.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedWriter) flushTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

// faultRoutes registers the HTTP form of the fault controls (see the package doc).
func (s *Server) faultRoutes(m *http.ServeMux) {
	type status struct {
		Faults
		Frozen bool `json:"frozen"`
		Held   int  `json:"held"`
	}
	get := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, status{Faults: s.Faults(), Frozen: s.Frozen(), Held: s.Held()})
	}
	m.HandleFunc("GET /_sim/faults", get)
	m.HandleFunc("PUT /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<10))
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			err = dec.Decode(&f)
		}
		if err == nil {
			err = s.SetFaults(f)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("faults: %v", err)})
			return
		}
		get(w, r)
	})
	m.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ResetFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/freeze", func(w http.ResponseWriter, r *http.Request) {
		s.Freeze()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/thaw", func(w http.ResponseWriter, r *http.Request) {
		s.Thaw()
		w.WriteHeader(http.StatusNoContent)
	})
}

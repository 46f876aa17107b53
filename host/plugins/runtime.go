// Package plugins runs kasse payment plugins: WebAssembly modules that implement the ABI in plugin/ABI.md.
// It owns the wazero runtime, load-time validation of modules and the rewrite that compiles the host's
// deadline checks into them (deadline.go), a pool of instances per loaded plugin that grows on demand and
// shrinks when idle, and the containment of misbehaving guests (deadline, memory cap, input and output caps,
// discarding and replacing an instance after any failure).
//
// A Runtime compiles and hosts many plugins. Runtime.Load validates a module and returns a *Plugin whose
// Call sends one input (JSON for a module of ABI version 1, binary for version 2; Plugin.ABIVersion says
// which, and Call converts an input in the other encoding) and returns the guest's JSON output. Plugin.Call is safe for concurrent use;
// an instance is never used by two goroutines at once.
//
// # Containment
//
// Every call runs under a deadline (WithCallTimeout). The host stops a guest at its deadline with a check,
// compiled into the module at load, at every loop header it executes (deadline.go). Code that recurses (or fans out through a chain of calls) without ever
// entering a loop escapes that check, so Load analyses the module's call graph and gives the functions that
// could do so a deadline check on entry (terminate.go explains the rule and why it bounds the work between
// two checks). Memory is capped per instance (WithMemoryLimitPages, with the capacity reserved up front);
// the native stack is bounded by wazero (deep recursion traps with a stack overflow). After a timeout, trap,
// exit, oversized output or ABI violation the instance is closed and its place in the pool freed; the
// plugin keeps serving from its other instances, and a caller that finds none free gets a fresh one
// (pool.go).
package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Runtime hosts plugins. It wraps one wazero.Runtime configured with the memory limit and, optionally, an
// on-disk compilation cache. Deadlines are the host's own checks compiled into each module (deadline.go),
// not wazero's WithCloseOnContextDone, which cost most of a call.
type Runtime struct {
	cfg    RuntimeConfig
	wz     wazero.Runtime
	cache  wazero.CompilationCache
	stderr io.Writer

	mu      sync.Mutex
	plugins map[*Plugin]struct{}
	closed  bool
	// startHook, when set (tests only, see export_test.go), runs before every background instance start of
	// the plugins loaded afterwards.
	startHook func()
	// yieldHook is startHook for the background yields.
	yieldHook func()
}

// NewRuntime creates a Runtime from cfg. It fails if cfg has an invalid setting or the compilation cache
// directory cannot be used.
func NewRuntime(ctx context.Context, cfg RuntimeConfig) (*Runtime, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("plugins: new runtime: %w", err)
	}
	wcfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(false).
		WithMemoryLimitPages(cfg.memoryLimitPages).
		WithMemoryCapacityFromMax(true)
	r := &Runtime{cfg: cfg, plugins: map[*Plugin]struct{}{}}
	if cfg.cacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.cacheDir)
		if err != nil {
			return nil, fmt.Errorf("plugins: new runtime: compilation cache: %w", err)
		}
		r.cache = cache
		wcfg = wcfg.WithCompilationCache(cache)
	}
	if cfg.stderr != nil {
		r.stderr = &lockedWriter{w: cfg.stderr}
	}
	r.wz = wazero.NewRuntimeWithConfig(ctx, wcfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.wz); err != nil {
		_ = r.wz.Close(ctx)
		if r.cache != nil {
			_ = r.cache.Close(ctx)
		}
		return nil, fmt.Errorf("plugins: new runtime: instantiate wasi: %w", err)
	}
	return r, nil
}

func (c RuntimeConfig) validate() error {
	switch {
	case !c.valid:
		return errors.New("config not made by NewRuntimeConfig")
	case c.memoryLimitPages < 1 || c.memoryLimitPages > 65536:
		return fmt.Errorf("memory limit %d pages out of range 1..65536", c.memoryLimitPages)
	case c.callTimeout <= 0:
		return fmt.Errorf("call timeout %v not positive", c.callTimeout)
	case c.maxInputBytes < 1 || c.maxInputBytes > 1<<30:
		return fmt.Errorf("max input %d bytes out of range 1..1GiB", c.maxInputBytes)
	case c.maxOutputBytes < 1 || c.maxOutputBytes > 1<<30:
		return fmt.Errorf("max output %d bytes out of range 1..1GiB", c.maxOutputBytes)
	case c.poolSize < 1:
		return fmt.Errorf("pool size %d not positive", c.poolSize)
	case c.poolMin < 1:
		return fmt.Errorf("pool minimum %d not positive", c.poolMin)
	case c.poolIdle <= 0:
		return fmt.Errorf("pool idle window %v not positive", c.poolIdle)
	case c.acquireTimeout < 0:
		return fmt.Errorf("acquire timeout %v negative", c.acquireTimeout)
	}
	return nil
}

// Close closes every plugin (waiting for their in-flight calls, as Plugin.Close does) and then the wazero
// runtime and compilation cache. The Runtime cannot be used afterwards.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	ps := make([]*Plugin, 0, len(r.plugins))
	for p := range r.plugins {
		ps = append(ps, p)
	}
	r.mu.Unlock()
	var errs []error
	for _, p := range ps {
		if err := p.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := r.wz.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("plugins: close runtime: %w", err))
	}
	if r.cache != nil {
		if err := r.cache.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("plugins: close compilation cache: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (r *Runtime) register(p *Plugin) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.plugins[p] = struct{}{}
	return true
}

func (r *Runtime) unregister(p *Plugin) {
	r.mu.Lock()
	delete(r.plugins, p)
	r.mu.Unlock()
}

// lockedWriter serialises writes from instances running on different goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

package plugins

import (
	"context"
	"io"
	"runtime"
	"time"
)

// Defaults of NewRuntimeConfig.
const (
	// DefaultMemoryLimitPages is 512 pages of 64 KiB (32 MiB). A Go reactor needs about 52 pages after
	// initialisation and about 130 in steady state.
	DefaultMemoryLimitPages = 512
	// DefaultCallTimeout is the per-call deadline. A call measured in microseconds to a few milliseconds.
	DefaultCallTimeout = 100 * time.Millisecond
	// DefaultMaxInputBytes caps the input message (Shopify Functions use 128 kB too).
	DefaultMaxInputBytes = 128 << 10
	// DefaultMaxOutputBytes caps the output message.
	DefaultMaxOutputBytes = 64 << 10
	// DefaultBulkCallTimeout, DefaultBulkMaxInputBytes and DefaultBulkMaxOutputBytes are the limits of a
	// bulk call (WithBulk): a Report API page of up to a thousand ledger entries, about 250 KB each way,
	// read a few times a minute off the request path.
	DefaultBulkCallTimeout    = 2 * time.Second
	DefaultBulkMaxInputBytes  = 2 << 20
	DefaultBulkMaxOutputBytes = 2 << 20
	// DefaultAcquireTimeout is how long Call waits for a free instance before failing with KindBusy.
	DefaultAcquireTimeout = 250 * time.Millisecond
	// DefaultPoolMin is how many instances a plugin keeps however idle it is: one, so that a call never
	// waits for an instantiation (5-7 ms) after a quiet spell.
	DefaultPoolMin = 1
	// DefaultPoolIdle is the window over which the pool measures its use: once per window it closes
	// instances beyond the most that were busy at once during it (and beyond the minimum).
	DefaultPoolIdle = 30 * time.Second
)

// RuntimeConfig configures a Runtime. It is immutable: every With method returns a changed copy, and only
// NewRuntime reports errors, so there is one place to handle them. The zero value is not valid; start from
// NewRuntimeConfig.
type RuntimeConfig struct {
	memoryLimitPages uint32
	callTimeout      time.Duration
	maxInputBytes    int
	maxOutputBytes   int
	poolSize         int
	poolMin          int
	poolIdle         time.Duration
	acquireTimeout   time.Duration
	cacheDir         string
	stderr           io.Writer
	// valid is false for a zero RuntimeConfig, so NewRuntime can tell it from one made by NewRuntimeConfig.
	valid bool
}

// NewRuntimeConfig returns the default configuration: a memory limit of DefaultMemoryLimitPages, a call
// timeout of DefaultCallTimeout, inputs up to DefaultMaxInputBytes, outputs up to DefaultMaxOutputBytes,
// a pool of up to max(2, GOMAXPROCS-1) instances per plugin (guests cannot be preempted, so one P is left for
// the rest of the host on larger machines; at least two, so that a 2-core machine is not serialised through
// one instance while it yields or is replaced) that keeps DefaultPoolMin and shrinks after DefaultPoolIdle,
// an acquire wait of DefaultAcquireTimeout, no compilation cache directory and guest stderr discarded (its
// tail still appears in trap errors).
func NewRuntimeConfig() RuntimeConfig {
	return RuntimeConfig{
		memoryLimitPages: DefaultMemoryLimitPages,
		callTimeout:      DefaultCallTimeout,
		maxInputBytes:    DefaultMaxInputBytes,
		maxOutputBytes:   DefaultMaxOutputBytes,
		poolSize:         max(2, runtime.GOMAXPROCS(0)-1),
		poolMin:          DefaultPoolMin,
		poolIdle:         DefaultPoolIdle,
		acquireTimeout:   DefaultAcquireTimeout,
		valid:            true,
	}
}

// WithMemoryLimitPages limits every instance's linear memory to n pages of 64 KiB. The host reserves the
// whole limit per instance up front (virtual memory), so that growing never copies.
func (c RuntimeConfig) WithMemoryLimitPages(n uint32) RuntimeConfig {
	c.memoryLimitPages = n
	return c
}

// WithCallTimeout sets the deadline of one call. A guest still running at the deadline is stopped and its
// instance discarded.
func (c RuntimeConfig) WithCallTimeout(d time.Duration) RuntimeConfig {
	c.callTimeout = d
	return c
}

// WithMaxInputBytes caps the size of an input message. Larger inputs fail with KindInputTooLarge before
// they reach the guest.
func (c RuntimeConfig) WithMaxInputBytes(n int) RuntimeConfig {
	c.maxInputBytes = n
	return c
}

// WithMaxOutputBytes caps the size of an output message. A larger output fails with KindOutputTooLarge and
// the instance is discarded.
func (c RuntimeConfig) WithMaxOutputBytes(n int) RuntimeConfig {
	c.maxOutputBytes = n
	return c
}

// WithPoolSize sets the most instances one plugin version runs, which is also the most concurrent calls it
// serves. The pool starts with the minimum (WithPoolMin), grows when a caller finds no free instance, and
// shrinks back when fewer were busy over a WithPoolIdle window. A minimum above n is lowered to n.
func (c RuntimeConfig) WithPoolSize(n int) RuntimeConfig {
	c.poolSize = n
	return c
}

// WithPoolMin sets how many instances a plugin version keeps when idle (at most the pool size). They are
// started at load, the first before Load returns and the others in the background.
func (c RuntimeConfig) WithPoolMin(n int) RuntimeConfig {
	c.poolMin = n
	return c
}

// WithPoolIdle sets the pool's measuring window: once per window, instances beyond the most that were busy
// at once during it, and beyond the minimum, are closed.
func (c RuntimeConfig) WithPoolIdle(d time.Duration) RuntimeConfig {
	c.poolIdle = d
	return c
}

// WithAcquireTimeout sets how long Call waits for a free instance before failing with KindBusy. A caller
// for whom an instance is being started or is yielding waits on for it (see pool.go): busy means every
// instance serves a call and none is on its way.
func (c RuntimeConfig) WithAcquireTimeout(d time.Duration) RuntimeConfig {
	c.acquireTimeout = d
	return c
}

// WithCompilationCacheDir keeps compiled modules in dir, so that a restart compiles a known module in tens
// of milliseconds instead of more than a second. The directory is created if needed.
func (c RuntimeConfig) WithCompilationCacheDir(dir string) RuntimeConfig {
	c.cacheDir = dir
	return c
}

// WithStderr forwards what guests write to stderr to w, at most stderrForwardLimit bytes per call and
// instance (the rest is dropped). w must be safe for concurrent use or is serialised by the runtime; it is
// never closed by the runtime.
func (c RuntimeConfig) WithStderr(w io.Writer) RuntimeConfig {
	c.stderr = w
	return c
}

// bulkKey marks a context whose plugin calls are bulk calls.
type bulkKey struct{}

// WithBulk returns a context whose plugin calls run under the bulk limits (DefaultBulkCallTimeout,
// DefaultBulkMaxInputBytes, DefaultBulkMaxOutputBytes, or the runtime's call limits if those are larger):
// for operations off the request path whose messages are large by nature, such as a page of a settlement
// ledger. The limits of calls on the request path stay tight.
func WithBulk(ctx context.Context) context.Context { return context.WithValue(ctx, bulkKey{}, true) }

// IsBulk reports whether ctx was made by WithBulk.
func IsBulk(ctx context.Context) bool { return ctx.Value(bulkKey{}) != nil }

// limitsFor returns cfg with the bulk limits applied when ctx asks for them.
func (c RuntimeConfig) limitsFor(ctx context.Context) RuntimeConfig {
	if ctx.Value(bulkKey{}) == nil {
		return c
	}
	c.callTimeout = max(c.callTimeout, DefaultBulkCallTimeout)
	c.maxInputBytes = max(c.maxInputBytes, DefaultBulkMaxInputBytes)
	c.maxOutputBytes = max(c.maxOutputBytes, DefaultBulkMaxOutputBytes)
	return c
}

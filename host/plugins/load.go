package plugins

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/kassehq/kasse/plugin/abi"
)

// allowedImports lists the WASI preview1 functions a plugin may import. The runtime gives guests no
// arguments, no environment, no preopened directories, fake clocks, a deterministic random source and no
// sockets, so the file-system functions can only fail; they are allowed because language runtimes (Go's
// os package among them) link them even when a plugin never opens a file. The sock_* functions are not
// allowed: a plugin does no I/O.
var allowedImports = map[string]bool{
	"args_get": true, "args_sizes_get": true, "environ_get": true, "environ_sizes_get": true,
	"clock_res_get": true, "clock_time_get": true,
	"fd_advise": true, "fd_allocate": true, "fd_close": true, "fd_datasync": true, "fd_fdstat_get": true,
	"fd_fdstat_set_flags": true, "fd_fdstat_set_rights": true, "fd_filestat_get": true,
	"fd_filestat_set_size": true, "fd_filestat_set_times": true, "fd_pread": true, "fd_prestat_get": true,
	"fd_prestat_dir_name": true, "fd_pwrite": true, "fd_read": true, "fd_readdir": true, "fd_renumber": true,
	"fd_seek": true, "fd_sync": true, "fd_tell": true, "fd_write": true,
	"path_create_directory": true, "path_filestat_get": true, "path_filestat_set_times": true,
	"path_link": true, "path_open": true, "path_readlink": true, "path_remove_directory": true,
	"path_rename": true, "path_symlink": true, "path_unlink_file": true,
	"poll_oneoff": true, "proc_exit": true, "proc_raise": true, "sched_yield": true, "random_get": true,
}

// signature is a function type, written as in the error messages: "(i32) -> i64".
type signature struct {
	params, results []api.ValueType
}

func (s signature) String() string {
	return "(" + valueTypes(s.params) + ") -> (" + valueTypes(s.results) + ")"
}

func valueTypes(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ", ")
}

func (s signature) matches(def api.FunctionDefinition) bool {
	return equalTypes(s.params, def.ParamTypes()) && equalTypes(s.results, def.ResultTypes())
}

func equalTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// requiredExports are the functions every plugin exports, with their exact signatures, in the order they
// are checked.
var requiredExports = []struct {
	name string
	sig  signature
}{
	{abi.ExportABIVersion, signature{nil, []api.ValueType{i32}}},
	{abi.ExportInput, signature{[]api.ValueType{i32}, []api.ValueType{i32}}},
	{abi.ExportCall, signature{[]api.ValueType{i32}, []api.ValueType{i64}}},
	{abi.ExportYield, signature{nil, nil}},
}

// startSignature is the signature _initialize must have when a module exports it.
var startSignature = signature{nil, nil}

type backgroundKey struct{}

// Background marks a Load as one that must not compete with live calls: it compiles on one worker
// instead of GOMAXPROCS, so that a new version compiled beside a serving one leaves the other cores to
// the calls. A start-up load, with nothing serving yet, should not use it.
func Background(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

// Load compiles wasm, validates it against the ABI, instantiates one instance (so that a module that cannot
// start fails here, not on the first call), checks its ABI version and returns the plugin. The pool's other
// instances are created in the background. name and version identify the plugin in errors and statistics.
//
// Load fails, naming the broken rule, if the module imports anything other than the allowed WASI functions,
// imports a memory, lacks an export or exports one with another signature, does not export its memory,
// fails to start, or reports an ABI version the host does not support (abi.Supported). Functions that could
// run unbounded without entering a loop get a deadline check on entry (see terminate.go).
func (r *Runtime) Load(ctx context.Context, name, version string, wasm []byte) (*Plugin, error) {
	p, err := r.load(ctx, name, version, wasm)
	if err != nil {
		return nil, fmt.Errorf("plugins: load plugin[%s]@%s: %w", name, version, err)
	}
	return p, nil
}

func (r *Runtime) load(ctx context.Context, name, version string, wasm []byte) (*Plugin, error) {
	if name == "" || version == "" {
		return nil, errors.New("name and version must not be empty")
	}
	workers := runtime.GOMAXPROCS(0)
	if ctx.Value(backgroundKey{}) != nil {
		workers = 1
	}
	cctx := experimental.WithCompilationWorkers(ctx, workers)
	var times LoadTimes
	t0 := time.Now()
	rewritePath := r.rewritePath(wasm)
	instrumented, cached := readRewrite(rewritePath)
	if !cached {
		checked, err := checkedFunctions(wasm)
		if err != nil {
			// Prefer wazero's own verdict on a module it cannot compile either.
			if compiled, cerr := r.wz.CompileModule(cctx, wasm); cerr != nil {
				return nil, fmt.Errorf("compile: %w", cerr)
			} else {
				_ = compiled.Close(ctx)
			}
			return nil, err
		}
		if instrumented, err = instrument(wasm, checked); err != nil {
			return nil, fmt.Errorf("deadline checks: %w", err)
		}
		if rewritePath != "" {
			writeRewrite(rewritePath, instrumented) // a failure only costs the rewrite again next time
		}
	}
	t1 := time.Now()
	times.Rewrite, times.RewriteCached = t1.Sub(t0), cached
	compiled, err := r.wz.CompileModule(cctx, instrumented)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	if err := checkModule(compiled); err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	t2 := time.Now()
	times.Compile = t2.Sub(t1)
	p := newPlugin(r, name, version, compiled)
	inst, err := p.instantiate(ctx)
	if err != nil {
		_ = compiled.Close(ctx)
		if ce, ok := err.(*CallError); ok {
			return nil, ce.Err // the load error names the plugin already
		}
		return nil, err
	}
	if p.abiVersion, err = inst.checkVersion(ctx, r.cfg.callTimeout); err != nil {
		p.closeInstance(inst)
		_ = compiled.Close(ctx)
		return nil, err
	}
	if !r.register(p) {
		p.closeInstance(inst)
		_ = compiled.Close(ctx)
		return nil, errors.New("runtime closed")
	}
	times.Instantiate = time.Since(t2)
	p.loadTimes = times
	p.start(inst)
	return p, nil
}

// LoadTimes says where a Load spent its time.
type LoadTimes struct {
	// Rewrite is compiling the host's deadline checks into the module, or reading that rewrite back from
	// the compilation cache directory (RewriteCached).
	Rewrite       time.Duration
	RewriteCached bool
	// Compile is wazero's compilation (decoding, validation, and native code from the compilation cache
	// or the compiler) and the ABI checks of the compiled module.
	Compile time.Duration
	// Instantiate is starting the first instance (its _initialize) and checking its ABI version.
	Instantiate time.Duration
}

// LoadTimes returns where the Load that made p spent its time.
func (p *Plugin) LoadTimes() LoadTimes { return p.loadTimes }

// checkModule applies the import and export rules to a compiled module.
func checkModule(m wazero.CompiledModule) error {
	for _, def := range m.ImportedFunctions() {
		mod, fn, _ := def.Import()
		if mod != wasi_snapshot_preview1.ModuleName || !allowedImports[fn] {
			return fmt.Errorf("import %s.%s not allowed", mod, fn)
		}
	}
	for _, def := range m.ImportedMemories() {
		mod, mem, _ := def.Import()
		return fmt.Errorf("import %s.%s not allowed: a plugin owns its memory", mod, mem)
	}
	exports := m.ExportedFunctions()
	for _, want := range requiredExports {
		def, ok := exports[want.name]
		if !ok {
			return fmt.Errorf("export %s missing", want.name)
		}
		if !want.sig.matches(def) {
			return fmt.Errorf("export %s has signature %s, want %s", want.name,
				signature{def.ParamTypes(), def.ResultTypes()}, want.sig)
		}
	}
	if def, ok := exports[abi.StartFunction]; ok && !startSignature.matches(def) {
		return fmt.Errorf("export %s has signature %s, want %s", abi.StartFunction,
			signature{def.ParamTypes(), def.ResultTypes()}, startSignature)
	}
	if _, ok := m.ExportedMemories()["memory"]; !ok {
		return errors.New("export memory missing")
	}
	return nil
}

// checkVersion calls kasse_abi_version and returns the version when the host supports it (abi.Supported).
func (in *instance) checkVersion(ctx context.Context, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := in.run(ctx, in.abiVersion); err != nil {
		return 0, fmt.Errorf("export %s: %w", abi.ExportABIVersion, err)
	}
	if in.tainted { // answered as the deadline passed: its deadline global may be set
		return 0, fmt.Errorf("export %s: %w", abi.ExportABIVersion, stopped(ctx))
	}
	v := int32(uint32(in.stack[0]))
	if !abi.Supported(int(v)) {
		return 0, fmt.Errorf("abi version %d, want %d or %d", v, abi.VersionJSON, abi.VersionBinary)
	}
	return int(v), nil
}

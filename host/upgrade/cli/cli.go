// Package cli implements `kasse plugin`, the command line side of plugin packaging: generating a signing
// key, building a plugin bundle (module, manifest, golden vectors), signing it, verifying it the way the
// host will (signature, digests, load-time checks, golden and conformance vectors) and inspecting it. The
// formats and checks are host/upgrade's; this package only parses flags and prints.
package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/host/upgrade"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

const usage = `usage: kasse plugin <command> [flags]

commands:
  keygen  -out PATH                       write an ed25519 key pair: PATH.key (private, 0600) and PATH.pub
  build   -name N -version V (-pkg P | -wasm F) [-golden DIR] [-ops a,b] [-out DIR] [-stem S]
                                          build (or take) a module and write S.wasm, S.manifest.json, S.golden.json
  sign    -key PATH.key STEM              write STEM.wasm.sig over STEM.manifest.json
  verify  [-trusted-key K]... [-dev] [-max-module-bytes N] [-no-gate] STEM
                                          check a bundle as the host will before it serves
  inspect STEM                            print the manifest and the module's imports, exports and memory

STEM is a bundle path without suffix, e.g. plugin/build/vipps-ecom.
`

// Main runs `kasse plugin` with args (the words after "plugin") and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		_, _ = io.WriteString(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "keygen":
		err = keygen(args[1:], stdout)
	case "build":
		err = build(args[1:], stdout)
	case "sign":
		err = sign(args[1:], stdout)
	case "verify":
		err = verify(args[1:], stdout)
	case "inspect":
		err = inspect(args[1:], stdout)
	case "help", "-h", "--help":
		_, _ = io.WriteString(stdout, usage)
		return 0
	default:
		_, _ = fmt.Fprintf(stderr, "kasse plugin: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "kasse plugin %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("kasse plugin "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// oneStem parses fs and returns its single positional argument.
func oneStem(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() != 1 {
		return "", errors.New("want exactly one bundle STEM (a path without .wasm)")
	}
	return strings.TrimSuffix(fs.Arg(0), upgrade.SuffixModule), nil
}

func keygen(args []string, stdout io.Writer) error {
	fs := newFlags("keygen")
	out := fs.String("out", "", "path prefix of the key files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("-out is required")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out+".key", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, base64.StdEncoding.EncodeToString(priv)+"\n"); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(*out+".pub", []byte(upgrade.FormatPublicKey(pub)+"\n"), 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %s.key (keep it secret) and %s.pub; trust it with plugins.trustedKeys:\n  - %q\n",
		*out, *out, upgrade.FormatPublicKey(pub))
	return err
}

func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%s is not a base64 ed25519 private key as keygen writes it", path)
	}
	return ed25519.PrivateKey(raw), nil
}

func build(args []string, stdout io.Writer) error {
	fs := newFlags("build")
	name := fs.String("name", "", "plugin name, e.g. vipps-ecom")
	version := fs.String("version", "", "plugin version, e.g. 1.2.0")
	pkg := fs.String("pkg", "", "Go package to build with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared")
	wasmPath := fs.String("wasm", "", "an already built module (instead of -pkg)")
	goldenDir := fs.String("golden", "", "directory of <vector>.input.json and <vector>.output.json pairs")
	opsFlag := fs.String("ops", "", "comma-separated operations the plugin implements (default: the golden vectors' ops and every required op)")
	outDir := fs.String("out", ".", "output directory")
	stem := fs.String("stem", "", "file stem (default the name)")
	abiVersion := fs.Int("abi", abi.Version, "the plugin ABI version the module implements (1: JSON input, built with -tags kasse_abi1; 2: binary input)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *version == "" || (*pkg == "") == (*wasmPath == "") {
		return errors.New("-name, -version and one of -pkg or -wasm are required")
	}
	if !abi.Supported(*abiVersion) {
		return fmt.Errorf("-abi %d: want %d or %d", *abiVersion, abi.VersionJSON, abi.VersionBinary)
	}
	if *stem == "" {
		*stem = *name
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(*outDir, *stem)
	var module []byte
	var err error
	if *pkg != "" {
		cmdArgs := []string{"build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", base + upgrade.SuffixModule}
		if *abiVersion == abi.VersionJSON {
			cmdArgs = append(cmdArgs, "-tags", "kasse_abi1")
		}
		cmd := exec.Command("go", append(cmdArgs, *pkg)...)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", *pkg, err, msg)
		}
		module, err = os.ReadFile(base + upgrade.SuffixModule)
	} else {
		module, err = os.ReadFile(*wasmPath)
		if err == nil && filepath.Clean(*wasmPath) != filepath.Clean(base+upgrade.SuffixModule) {
			err = os.WriteFile(base+upgrade.SuffixModule, module, 0o644)
		}
	}
	if err != nil {
		return err
	}
	var golden []byte
	var ops []string
	for _, op := range abi.Ops {
		ops = append(ops, string(op))
	}
	if *goldenDir != "" {
		if golden, err = upgrade.ReadGoldenDir(*goldenDir); err != nil {
			return err
		}
		gops, err := upgrade.GoldenOps(golden)
		if err != nil {
			return err
		}
		ops = append(ops, gops...)
		if err := os.WriteFile(base+upgrade.SuffixGolden, golden, 0o644); err != nil {
			return err
		}
	}
	if *opsFlag != "" {
		ops = strings.Split(*opsFlag, ",")
	}
	manifest := upgrade.NewManifest(*name, *version, module, golden, ops)
	manifest.ABIVersion = *abiVersion
	if err := os.WriteFile(base+upgrade.SuffixManifest, manifest.Encode(), 0o644); err != nil {
		return err
	}
	// A signature of an earlier manifest would only be refused later.
	if err := os.Remove(base + upgrade.SuffixSignature); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_, err = fmt.Fprintf(stdout, "built %s@%s: %s (%d bytes, sha256 %s), %d ops, %s; sign it with `kasse plugin sign`\n",
		*name, *version, base+upgrade.SuffixModule, manifest.Size, manifest.SHA256, len(manifest.Ops), goldenNote(golden))
	return err
}

func goldenNote(golden []byte) string {
	if len(golden) == 0 {
		return "no golden vectors (only development mode loads it)"
	}
	vs, _ := upgrade.ParseGolden(golden)
	return fmt.Sprintf("%d golden vectors", len(vs))
}

func sign(args []string, stdout io.Writer) error {
	fs := newFlags("sign")
	keyPath := fs.String("key", "", "private key file written by keygen")
	stem, err := oneStem(fs, args)
	if err != nil {
		return err
	}
	if *keyPath == "" {
		return errors.New("-key is required")
	}
	key, err := readPrivateKey(*keyPath)
	if err != nil {
		return err
	}
	manifest, err := os.ReadFile(stem + upgrade.SuffixManifest)
	if err != nil {
		return err
	}
	if err := os.WriteFile(stem+upgrade.SuffixSignature, upgrade.Sign(manifest, key), 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "signed %s with %s\n", stem+upgrade.SuffixManifest, upgrade.KeyID(key.Public().(ed25519.PublicKey)))
	return err
}

// keyList collects repeated -trusted-key flags.
type keyList []ed25519.PublicKey

func (k *keyList) String() string { return fmt.Sprint(len(*k), " keys") }

func (k *keyList) Set(s string) error {
	key, err := upgrade.ParsePublicKey(s)
	if err != nil {
		if data, ferr := os.ReadFile(s); ferr == nil {
			key, err = upgrade.ParsePublicKey(string(data))
		}
	}
	if err != nil {
		return err
	}
	*k = append(*k, key)
	return nil
}

func verify(args []string, stdout io.Writer) error {
	fs := newFlags("verify")
	var keys keyList
	fs.Var(&keys, "trusted-key", "a trusted public key, or a .pub file (repeatable)")
	dev := fs.Bool("dev", false, "development mode: accept an unsigned bundle")
	maxBytes := fs.Int64("max-module-bytes", 0, "module size limit (default 16 MiB)")
	noGate := fs.Bool("no-gate", false, "skip loading the module and running its golden and conformance vectors")
	stem, err := oneStem(fs, args)
	if err != nil {
		return err
	}
	b, err := upgrade.ReadBundle(stem, *maxBytes)
	if err != nil {
		return err
	}
	v, err := upgrade.Verify(b, upgrade.VerifyOptions{TrustedKeys: keys, DevMode: *dev, MaxModuleBytes: *maxBytes})
	if err != nil {
		return err
	}
	signer := "unsigned"
	if v.Signed {
		signer = "signed by " + v.KeyID
	}
	if !*noGate {
		ctx := context.Background()
		cfg := plugins.NewRuntimeConfig()
		if dir, err := os.UserCacheDir(); err == nil {
			cfg = cfg.WithCompilationCacheDir(filepath.Join(dir, "kasse", "wazero"))
		}
		rt, err := plugins.NewRuntime(ctx, cfg)
		if err != nil {
			return err
		}
		defer func() { _ = rt.Close(ctx) }()
		p, err := rt.Load(ctx, v.Manifest.Name, v.Manifest.Version, b.Module)
		if err != nil {
			return &upgrade.RefusedError{Plugin: v.Manifest.Name, Version: v.Manifest.Version, Rule: upgrade.RuleLoad, Err: err}
		}
		if err := upgrade.MatchABIVersion(v, p); err != nil {
			return err
		}
		set, err := schemas.Compile()
		if err != nil {
			return err
		}
		if err := upgrade.Gate(ctx, p, v, set); err != nil {
			return err
		}
		signer += fmt.Sprintf(", loads, passes %d golden vectors and the conformance vectors", len(v.Golden))
	}
	_, err = fmt.Fprintf(stdout, "ok: %s@%s (sha256 %s), %s\n", v.Manifest.Name, v.Manifest.Version, v.Manifest.SHA256, signer)
	return err
}

func inspect(args []string, stdout io.Writer) error {
	fs := newFlags("inspect")
	stem, err := oneStem(fs, args)
	if err != nil {
		return err
	}
	b, err := upgrade.ReadBundle(stem, 1<<30)
	if err != nil {
		return err
	}
	w := &errWriter{w: stdout}
	w.printf("bundle %s\n", stem)
	// Development mode lets Verify describe even an unsigned bundle; the signature is reported apart.
	v, verr := upgrade.Verify(b, upgrade.VerifyOptions{DevMode: true, MaxModuleBytes: 1 << 30})
	if verr != nil {
		w.printf("  problem:    %v\n", verr)
	} else {
		mf := v.Manifest
		w.printf("  plugin:     %s@%s (abi %d)\n  module:     %d bytes, sha256 %s\n  ops:        %s\n  golden:     %d vectors\n",
			mf.Name, mf.Version, mf.ABIVersion, mf.Size, mf.SHA256, strings.Join(mf.Ops, ", "), len(v.Golden))
	}
	switch {
	case len(b.Manifest) == 0:
		w.printf("  manifest:   none\n")
	case len(b.Signature) == 0:
		w.printf("  signature:  none\n")
	default:
		w.printf("  signature:  present (verify it with `kasse plugin verify -trusted-key ...`)\n")
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer func() { _ = r.Close(ctx) }()
	cm, err := r.CompileModule(ctx, b.Module)
	if err != nil {
		w.printf("  compile:    %v\n", err)
		return w.err
	}
	var imports []string
	for _, def := range cm.ImportedFunctions() {
		mod, fn, _ := def.Import()
		imports = append(imports, mod+"."+fn)
	}
	slices.Sort(imports)
	var exports []string
	for name, def := range cm.ExportedFunctions() {
		exports = append(exports, name+signature(def))
	}
	slices.Sort(exports)
	w.printf("  imports:    %s\n  exports:    %s\n", strings.Join(imports, ", "), strings.Join(exports, ", "))
	for name, mem := range cm.ExportedMemories() {
		maxPages := "none"
		if mx, ok := mem.Max(); ok {
			maxPages = fmt.Sprint(mx)
		}
		w.printf("  memory:     %s min %d pages, max %s\n", name, mem.Min(), maxPages)
	}
	return w.err
}

func signature(def api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		var s []string
		for _, t := range ts {
			s = append(s, api.ValueTypeName(t))
		}
		return strings.Join(s, ", ")
	}
	return "(" + names(def.ParamTypes()) + ") -> (" + names(def.ResultTypes()) + ")"
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

package upgrade

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/kassehq/kasse/plugin/abi"
)

// File name suffixes of a plugin bundle in a directory. A bundle is named by its stem: the module's file
// name without ".wasm" ("vipps-ecom" or "vipps-ecom-1.2.0"); the plugin's name comes from the manifest.
const (
	// SuffixModule is the WebAssembly module.
	SuffixModule = ".wasm"
	// SuffixManifest is the manifest (Manifest as JSON).
	SuffixManifest = ".manifest.json"
	// SuffixSignature is the ed25519 signature of the manifest, base64 on one line.
	SuffixSignature = ".wasm.sig"
	// SuffixGolden is the version's own golden vectors (GoldenFile as JSON).
	SuffixGolden = ".golden.json"
)

// DefaultMaxModuleBytes is the module size limit when none is configured: 16 MiB, several times a Go
// plugin's 3.5 MB.
const DefaultMaxModuleBytes = 16 << 20

// maxSideFileBytes caps the manifest, signature and golden files read from a directory or an upload.
const maxSideFileBytes = 8 << 20

// signatureContext is prepended to the manifest bytes before signing, so that a kasse plugin signature
// cannot be replayed as a signature over anything else made with the same key.
const signatureContext = "kasse-plugin-manifest-v1\n"

// Manifest describes one plugin version. Its exact bytes are what the signature covers, and it pins the
// module and the golden vectors by digest, so one signature covers all three files.
type Manifest struct {
	// Name is the plugin's name, e.g. "vipps-ecom": lowercase letters, digits and hyphens.
	Name string `json:"name"`
	// Version is the plugin's SemVer 2.0 version without a "v", e.g. "1.2.0" or "1.3.0-rc.1".
	Version string `json:"version"`
	// ABIVersion is the plugin ABI the module implements: abi.VersionJSON or abi.VersionBinary, and what
	// the module's kasse_abi_version answers (checked when it is loaded).
	ABIVersion int `json:"abiVersion"`
	// SHA256 is the lowercase hex SHA-256 of the module.
	SHA256 string `json:"sha256"`
	// Size is the module's length in bytes.
	Size int64 `json:"size"`
	// Ops are the operations the plugin implements; every op in abi.Ops is required.
	Ops []string `json:"ops"`
	// GoldenSHA256 is the lowercase hex SHA-256 of the golden vectors file, empty when none is shipped.
	GoldenSHA256 string `json:"goldenSha256,omitempty"`
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	versionRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$`)
	opRE      = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	hexRE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// check validates a manifest's own fields (not yet against the module).
func (m *Manifest) check() error {
	switch {
	case !nameRE.MatchString(m.Name):
		return &RefusedError{Rule: RuleManifest, Err: fmt.Errorf("name %q is not lowercase letters, digits and hyphens", m.Name)}
	case !versionRE.MatchString(m.Version) || !isSemVer(m.Version):
		return &RefusedError{Rule: RuleManifest, Err: fmt.Errorf("version %q is not a SemVer 2.0 version (MAJOR.MINOR.PATCH[-prerelease][+build])", m.Version)}
	case !hexRE.MatchString(m.SHA256):
		return &RefusedError{Rule: RuleManifest, Err: fmt.Errorf("sha256 %q is not 64 lowercase hex digits", m.SHA256)}
	case m.GoldenSHA256 != "" && !hexRE.MatchString(m.GoldenSHA256):
		return &RefusedError{Rule: RuleManifest, Err: fmt.Errorf("goldenSha256 %q is not 64 lowercase hex digits", m.GoldenSHA256)}
	case !abi.Supported(m.ABIVersion):
		return &RefusedError{Rule: RuleABIVersion, Err: fmt.Errorf("manifest abiVersion %d, want %d or %d", m.ABIVersion,
			abi.VersionJSON, abi.VersionBinary)}
	}
	for _, op := range m.Ops {
		if !opRE.MatchString(op) {
			return &RefusedError{Rule: RuleManifest, Err: fmt.Errorf("op %q is not a lowercase identifier", op)}
		}
	}
	for _, op := range abi.Ops {
		if !slices.Contains(m.Ops, string(op)) {
			return &RefusedError{Rule: RuleManifest, Err: fmt.Errorf("ops lack %s, which every payment plugin implements", op)}
		}
	}
	return nil
}

// Bundle is one plugin version as delivered: the module and the files beside it, as bytes. Manifest and
// Signature are empty for an unsigned development module; Golden is empty when no vectors are shipped.
type Bundle struct {
	// Stem names the bundle in messages: the file stem in a directory, or the name of an upload.
	Stem      string
	Module    []byte
	Manifest  []byte
	Signature []byte
	Golden    []byte
}

// ReadBundle reads the bundle stem (a path without suffix, e.g. "plugin/build/vipps-ecom") from disk. The
// module is refused before it is read when it is larger than maxModuleBytes (0 means
// DefaultMaxModuleBytes). Missing manifest, signature and golden files are left empty; Verify decides.
func ReadBundle(stem string, maxModuleBytes int64) (Bundle, error) {
	if maxModuleBytes <= 0 {
		maxModuleBytes = DefaultMaxModuleBytes
	}
	b := Bundle{Stem: filepath.Base(stem)}
	var err error
	if b.Module, err = readLimited(stem+SuffixModule, maxModuleBytes, true); err != nil {
		return b, err
	}
	for _, f := range []struct {
		dst    *[]byte
		suffix string
	}{{&b.Manifest, SuffixManifest}, {&b.Signature, SuffixSignature}, {&b.Golden, SuffixGolden}} {
		if *f.dst, err = readLimited(stem+f.suffix, maxSideFileBytes, false); err != nil {
			return b, err
		}
	}
	return b, nil
}

// readLimited reads path, refusing a file over limit without reading it. A missing optional file is nil.
func readLimited(path string, limit int64, required bool) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("upgrade: read bundle: %w", err)
	}
	defer func() { _ = f.Close() }()
	var size int64
	if fi, err := f.Stat(); err == nil {
		if fi.Size() > limit {
			return nil, &RefusedError{Rule: RuleSize, Err: fmt.Errorf("%s is %d bytes, over the limit of %d", filepath.Base(path), fi.Size(), limit)}
		}
		size = fi.Size()
	}
	// Sized from the file, so that a module of megabytes is read in one go instead of through a dozen
	// doublings of a buffer (about 10 ms of a start per module); the limit still holds if it grew since.
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead)) // ReadFrom wants MinRead free to not grow
	_, err = buf.ReadFrom(io.LimitReader(f, limit+1))
	data := buf.Bytes()
	if err != nil {
		return nil, fmt.Errorf("upgrade: read bundle: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, &RefusedError{Rule: RuleSize, Err: fmt.Errorf("%s is over the limit of %d bytes", filepath.Base(path), limit)}
	}
	return data, nil
}

// Verified is a bundle that passed Verify: its manifest decoded (or synthesised for an unsigned
// development module) and its golden vectors.
type Verified struct {
	Bundle   Bundle
	Manifest Manifest
	// Signed reports whether a trusted key's signature covers the bundle.
	Signed bool
	// KeyID identifies the key that signed it (KeyID of the public key), empty when unsigned.
	KeyID string
	// Golden are the version's own vectors.
	Golden []Vector
}

// VerifyOptions are the trust settings Verify applies.
type VerifyOptions struct {
	// TrustedKeys are the ed25519 public keys whose signatures are accepted.
	TrustedKeys []ed25519.PublicKey
	// DevMode accepts a bundle without signature (and without manifest, whose fields are then derived
	// from the module). A signature that is present is still checked when TrustedKeys is not empty, and a
	// manifest that is present must still match the module: a tampered bundle is refused in every mode.
	DevMode bool
	// MaxModuleBytes is the module size limit; 0 means DefaultMaxModuleBytes.
	MaxModuleBytes int64
}

// Verify checks a bundle before any of it is compiled: the size limit, the manifest, the signature over the
// manifest, the module's and the golden file's digests, the declared ABI version. Each refusal is a
// *RefusedError naming the rule.
func Verify(b Bundle, opts VerifyOptions) (*Verified, error) {
	maxBytes := opts.MaxModuleBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxModuleBytes
	}
	if int64(len(b.Module)) > maxBytes {
		return nil, &RefusedError{Rule: RuleSize, Err: fmt.Errorf("module is %d bytes, over the limit of %d", len(b.Module), maxBytes)}
	}
	sum := sha256.Sum256(b.Module)
	digest := hex.EncodeToString(sum[:])
	v := &Verified{Bundle: b}
	if len(b.Manifest) == 0 {
		if !opts.DevMode {
			return nil, &RefusedError{Rule: RuleSignature, Err: errors.New("no manifest and no signature: unsigned modules load only with plugins.devMode")}
		}
		// ABIVersion stays 0 until the module is loaded and says (loadVerified).
		v.Manifest = Manifest{Name: b.Stem, Version: "sha256-" + digest[:12],
			SHA256: digest, Size: int64(len(b.Module))}
		for _, op := range abi.Ops {
			v.Manifest.Ops = append(v.Manifest.Ops, string(op))
		}
		if !nameRE.MatchString(v.Manifest.Name) {
			return nil, &RefusedError{Rule: RuleManifest, Err: fmt.Errorf("file name %q is not a plugin name", b.Stem)}
		}
		if len(b.Golden) > 0 {
			golden, err := ParseGolden(b.Golden)
			if err != nil {
				return nil, err
			}
			v.Golden = golden
			// The optional operations (Express, report) an unsigned module offers are the ones its
			// vectors exercise, as `kasse plugin build` declares them in a manifest.
			gops, err := GoldenOps(b.Golden)
			if err != nil {
				return nil, err
			}
			for _, op := range gops {
				if !slices.Contains(v.Manifest.Ops, op) {
					v.Manifest.Ops = append(v.Manifest.Ops, op)
				}
			}
		}
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b.Manifest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v.Manifest); err != nil {
		return nil, &RefusedError{Rule: RuleManifest, Err: fmt.Errorf("decode manifest: %w", err)}
	}
	// The signature is checked first: nothing else in an unauthenticated manifest is worth reporting.
	switch {
	case len(b.Signature) > 0 && len(opts.TrustedKeys) > 0:
		id, err := checkSignature(b.Manifest, b.Signature, opts.TrustedKeys)
		if err != nil {
			return nil, &RefusedError{Plugin: v.Manifest.Name, Version: v.Manifest.Version, Rule: RuleSignature, Err: err}
		}
		v.Signed, v.KeyID = true, id
	case !opts.DevMode && len(b.Signature) == 0:
		return nil, &RefusedError{Plugin: v.Manifest.Name, Version: v.Manifest.Version, Rule: RuleSignature,
			Err: errors.New("no signature: unsigned modules load only with plugins.devMode")}
	case !opts.DevMode:
		return nil, &RefusedError{Plugin: v.Manifest.Name, Version: v.Manifest.Version, Rule: RuleSignature,
			Err: errors.New("signed, but no plugins.trustedKeys are configured")}
	}
	if err := v.Manifest.check(); err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			re.Plugin, re.Version = v.Manifest.Name, v.Manifest.Version
		}
		return nil, err
	}
	refuse := func(rule Rule, err error) error {
		return &RefusedError{Plugin: v.Manifest.Name, Version: v.Manifest.Version, Rule: rule, Err: err}
	}
	if v.Manifest.SHA256 != digest {
		return nil, refuse(RuleDigest, fmt.Errorf("module digest mismatch (want %s, got %s)", v.Manifest.SHA256, digest))
	}
	if v.Manifest.Size != int64(len(b.Module)) {
		return nil, refuse(RuleDigest, fmt.Errorf("module size mismatch (want %d, got %d)", v.Manifest.Size, len(b.Module)))
	}
	switch {
	case v.Manifest.GoldenSHA256 == "" && len(b.Golden) > 0:
		return nil, refuse(RuleDigest, errors.New("golden vectors shipped but not pinned by the manifest's goldenSha256"))
	case v.Manifest.GoldenSHA256 == "" && !opts.DevMode:
		return nil, refuse(RuleGolden, errors.New("no golden vectors: a version must ship its own (goldenSha256)"))
	case v.Manifest.GoldenSHA256 != "":
		gsum := sha256.Sum256(b.Golden)
		if got := hex.EncodeToString(gsum[:]); got != v.Manifest.GoldenSHA256 {
			return nil, refuse(RuleDigest, fmt.Errorf("golden vectors digest mismatch (want %s, got %s)", v.Manifest.GoldenSHA256, got))
		}
		golden, err := ParseGolden(b.Golden)
		if err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				re.Plugin, re.Version = v.Manifest.Name, v.Manifest.Version
			}
			return nil, err
		}
		v.Golden = golden
	}
	return v, nil
}

// checkSignature verifies sig (the signature file's text) over manifest with each trusted key and returns
// the ID of the key that signed it.
func checkSignature(manifest, sig []byte, keys []ed25519.PublicKey) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sig)))
	if err != nil || len(raw) != ed25519.SignatureSize {
		return "", fmt.Errorf("signature file is not %d bytes of base64", ed25519.SignatureSize)
	}
	msg := signedMessage(manifest)
	for _, k := range keys {
		if ed25519.Verify(k, msg, raw) {
			return KeyID(k), nil
		}
	}
	return "", fmt.Errorf("signature does not verify under any of the %d trusted keys", len(keys))
}

func signedMessage(manifest []byte) []byte {
	return append([]byte(signatureContext), manifest...)
}

// Sign returns the signature file content (base64 and a newline) for manifest, made with key.
func Sign(manifest []byte, key ed25519.PrivateKey) []byte {
	sig := ed25519.Sign(key, signedMessage(manifest))
	return []byte(base64.StdEncoding.EncodeToString(sig) + "\n")
}

// KeyID is a short, stable identifier of a public key for messages and history: "ed25519:" and the first
// 8 bytes of its SHA-256 in hex.
func KeyID(k ed25519.PublicKey) string {
	sum := sha256.Sum256(k)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// ParsePublicKey reads a trusted key as written in the config: the 32-byte ed25519 public key in standard
// base64, optionally prefixed with "ed25519:".
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "ed25519:"))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("upgrade: trusted key is not %d bytes of base64", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// FormatPublicKey writes a public key as ParsePublicKey reads it.
func FormatPublicKey(k ed25519.PublicKey) string {
	return "ed25519:" + base64.StdEncoding.EncodeToString(k)
}

// NewManifest builds the manifest for a module and its golden file (nil for none), with ops sorted. It
// declares abi.Version, what modules built with plugin/sdk implement; set ABIVersion for a module of another
// version (`kasse plugin build -abi 1`): loading refuses a module that reports another version than its
// manifest.
func NewManifest(name, version string, module, golden []byte, ops []string) Manifest {
	sum := sha256.Sum256(module)
	m := Manifest{Name: name, Version: version, ABIVersion: abi.Version, SHA256: hex.EncodeToString(sum[:]),
		Size: int64(len(module)), Ops: slices.Sorted(slices.Values(ops))}
	m.Ops = slices.Compact(m.Ops)
	if len(golden) > 0 {
		gsum := sha256.Sum256(golden)
		m.GoldenSHA256 = hex.EncodeToString(gsum[:])
	}
	return m
}

// Encode returns the manifest as indented JSON with a trailing newline: the bytes to write and sign.
func (m Manifest) Encode() []byte {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic("upgrade: encode manifest: " + err.Error()) // a struct of strings and ints always encodes
	}
	return append(b, '\n')
}

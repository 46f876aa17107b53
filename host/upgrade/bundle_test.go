package upgrade_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kassehq/kasse/host/upgrade"
)

// fakeModule stands for a module in tests that do not compile it: Verify never looks inside.
var fakeModule = append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte{0}, 64)...)

const fakeGolden = `{"vectors":[{"name":"v1","input":{"op":"build_details"},"output":{"ok":true}}]}`

func TestVerify(t *testing.T) {
	pub, priv := newKey(t)
	otherPub, otherPriv := newKey(t)
	good := signedBundle(t, priv, "vipps-ecom", "1.2.0", fakeModule, []byte(fakeGolden))
	trusted := upgrade.VerifyOptions{TrustedKeys: []ed25519.PublicKey{pub}}
	resign := func(b upgrade.Bundle, edit func(*upgrade.Manifest)) upgrade.Bundle {
		m := upgrade.NewManifest("vipps-ecom", "1.2.0", b.Module, b.Golden, allOps())
		edit(&m)
		b.Manifest = m.Encode()
		b.Signature = upgrade.Sign(b.Manifest, priv)
		return b
	}
	sha := good.Manifest[bytes.Index(good.Manifest, []byte(`"sha256": "`))+11:][:64]
	tests := []struct {
		name   string
		bundle func() upgrade.Bundle
		opts   upgrade.VerifyOptions
		rule   upgrade.Rule
		err    string // whole error, when set
	}{
		{name: "signed", bundle: func() upgrade.Bundle { return good }, opts: trusted},
		{name: "signed by another trusted key", bundle: func() upgrade.Bundle {
			b := good
			b.Signature = upgrade.Sign(b.Manifest, otherPriv)
			return b
		}, opts: upgrade.VerifyOptions{TrustedKeys: []ed25519.PublicKey{pub, otherPub}}},
		{name: "bad signature", bundle: func() upgrade.Bundle {
			b := good
			b.Signature = upgrade.Sign(b.Manifest, otherPriv)
			return b
		}, opts: trusted, rule: upgrade.RuleSignature,
			err: "upgrade: plugin[vipps-ecom]@1.2.0 refused: signature: signature does not verify under any of the 1 trusted keys"},
		{name: "signature not base64", bundle: func() upgrade.Bundle {
			b := good
			b.Signature = []byte("not a signature")
			return b
		}, opts: trusted, rule: upgrade.RuleSignature},
		{name: "manifest changed after signing", bundle: func() upgrade.Bundle {
			b := good
			b.Manifest = bytes.Replace(b.Manifest, []byte(`"1.2.0"`), []byte(`"1.2.1"`), 1)
			return b
		}, opts: trusted, rule: upgrade.RuleSignature},
		{name: "tampered module", bundle: func() upgrade.Bundle {
			b := good
			b.Module = append(bytes.Clone(b.Module[:len(b.Module)-1]), 1)
			return b
		}, opts: trusted, rule: upgrade.RuleDigest},
		{name: "tampered module in dev mode", bundle: func() upgrade.Bundle {
			b := good
			b.Module = append(bytes.Clone(b.Module[:len(b.Module)-1]), 1)
			return b
		}, opts: upgrade.VerifyOptions{DevMode: true}, rule: upgrade.RuleDigest},
		{name: "wrong sha256", bundle: func() upgrade.Bundle {
			return resign(good, func(m *upgrade.Manifest) { m.SHA256 = strings.Repeat("ab", 32) })
		}, opts: trusted, rule: upgrade.RuleDigest,
			err: "upgrade: plugin[vipps-ecom]@1.2.0 refused: digest: module digest mismatch (want " + strings.Repeat("ab", 32) + ", got " + string(sha) + ")"},
		{name: "tampered golden vectors", bundle: func() upgrade.Bundle {
			b := good
			b.Golden = bytes.Replace(b.Golden, []byte(`"ok":true`), []byte(`"ok":false`), 1)
			return b
		}, opts: trusted, rule: upgrade.RuleDigest},
		{name: "no golden vectors", bundle: func() upgrade.Bundle {
			b := good
			b.Golden = nil
			return resign(b, func(m *upgrade.Manifest) {})
		}, opts: trusted, rule: upgrade.RuleGolden},
		{name: "wrong abi version", bundle: func() upgrade.Bundle {
			return resign(good, func(m *upgrade.Manifest) { m.ABIVersion = 3 })
		}, opts: trusted, rule: upgrade.RuleABIVersion,
			err: "upgrade: plugin[vipps-ecom]@1.2.0 refused: abi-version: manifest abiVersion 3, want 1 or 2"},
		{name: "missing op", bundle: func() upgrade.Bundle {
			return resign(good, func(m *upgrade.Manifest) { m.Ops = m.Ops[1:] })
		}, opts: trusted, rule: upgrade.RuleManifest},
		{name: "oversized", bundle: func() upgrade.Bundle { return good },
			opts: upgrade.VerifyOptions{TrustedKeys: trusted.TrustedKeys, MaxModuleBytes: 16}, rule: upgrade.RuleSize,
			err: "upgrade: plugin refused: size: module is 72 bytes, over the limit of 16"},
		{name: "unsigned", bundle: func() upgrade.Bundle {
			b := good
			b.Signature = nil
			return b
		}, opts: trusted, rule: upgrade.RuleSignature},
		{name: "unsigned in dev mode", bundle: func() upgrade.Bundle {
			b := good
			b.Signature = nil
			return b
		}, opts: upgrade.VerifyOptions{DevMode: true}},
		{name: "bare module", bundle: func() upgrade.Bundle {
			return upgrade.Bundle{Stem: "vipps-ecom", Module: fakeModule}
		}, opts: trusted, rule: upgrade.RuleSignature,
			err: "upgrade: plugin refused: signature: no manifest and no signature: unsigned modules load only with plugins.devMode"},
		{name: "bare module in dev mode", bundle: func() upgrade.Bundle {
			return upgrade.Bundle{Stem: "vipps-ecom", Module: fakeModule}
		}, opts: upgrade.VerifyOptions{DevMode: true}},
		{name: "signed, no trusted keys", bundle: func() upgrade.Bundle { return good },
			opts: upgrade.VerifyOptions{}, rule: upgrade.RuleSignature},
		{name: "manifest with unknown field", bundle: func() upgrade.Bundle {
			b := good
			b.Manifest = bytes.Replace(b.Manifest, []byte("{"), []byte(`{"extra":1,`), 1)
			b.Signature = upgrade.Sign(b.Manifest, priv)
			return b
		}, opts: trusted, rule: upgrade.RuleManifest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := upgrade.Verify(tc.bundle(), tc.opts)
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if v.Manifest.Name != "vipps-ecom" {
					t.Errorf("name %q", v.Manifest.Name)
				}
				return
			}
			var re *upgrade.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("Verify error %v (%T), want a *RefusedError", err, err)
			}
			if re.Rule != tc.rule {
				t.Errorf("rule %q, want %q (%v)", re.Rule, tc.rule, err)
			}
			if tc.err != "" && err.Error() != tc.err {
				t.Errorf("error\n got %q\nwant %q", err, tc.err)
			}
		})
	}
}

func TestBareModuleInDevModeGetsDigestVersion(t *testing.T) {
	v, err := upgrade.Verify(upgrade.Bundle{Stem: "vipps-ecom", Module: fakeModule}, upgrade.VerifyOptions{DevMode: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.Manifest.Version, "sha256-") || len(v.Manifest.Version) != 19 || v.Signed {
		t.Errorf("manifest %+v, signed %v", v.Manifest, v.Signed)
	}
}

func TestReadBundleRefusesOversizedModuleUnread(t *testing.T) {
	dir := t.TempDir()
	stem := filepath.Join(dir, "big")
	if err := os.WriteFile(stem+".wasm", make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := upgrade.ReadBundle(stem, 999)
	var re *upgrade.RefusedError
	if !errors.As(err, &re) || re.Rule != upgrade.RuleSize || err.Error() != "upgrade: plugin refused: size: big.wasm is 1000 bytes, over the limit of 999" {
		t.Fatalf("ReadBundle error %v", err)
	}
	b, err := upgrade.ReadBundle(stem, 1000)
	if err != nil || len(b.Module) != 1000 || b.Manifest != nil || b.Signature != nil || b.Stem != "big" {
		t.Fatalf("ReadBundle = %+v, %v", b.Stem, err)
	}
}

func TestParsePublicKey(t *testing.T) {
	pub, _ := newKey(t)
	s := upgrade.FormatPublicKey(pub)
	for _, in := range []string{s, strings.TrimPrefix(s, "ed25519:"), " " + s + "\n"} {
		k, err := upgrade.ParsePublicKey(in)
		if err != nil || !k.Equal(pub) {
			t.Errorf("ParsePublicKey(%q) = %v, %v", in, k, err)
		}
	}
	if _, err := upgrade.ParsePublicKey("ed25519:AAAA"); err == nil {
		t.Error("short key accepted")
	}
}

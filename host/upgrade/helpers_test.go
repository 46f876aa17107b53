package upgrade_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/internal/wat"
	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/host/upgrade"
	"github.com/kassehq/kasse/host/upgrade/upgradetest"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
	"github.com/kassehq/kasse/schemas"
)

const (
	ecomPkg  = "./plugin/vippsecom"
	flakyPkg = "./host/upgrade/testdata/flaky"
	// callTimeout is generous: a shared 2-core machine can stall a good call for tens of milliseconds.
	callTimeout = time.Second
)

var (
	buildOnce sync.Once
	built     map[string][]byte
	goldenRaw []byte
)

// modules builds the vipps-ecom plugin and the flaky test plugin once per test binary.
func modules(t testing.TB) map[string][]byte {
	t.Helper()
	buildOnce.Do(func() {
		built = plugintest.BuildAll(t, ecomPkg, flakyPkg, upgradetest.EvilPkg)
		g, err := upgrade.ReadGoldenDir(filepath.Join(plugintest.ModuleRoot(t), "plugin", "vippsecom", "testdata", "golden"))
		if err != nil {
			t.Fatal(err)
		}
		goldenRaw = g
	})
	if built == nil || goldenRaw == nil {
		t.Fatal("building the test plugins failed in an earlier test")
	}
	return built
}

// ecomGolden returns vipps-ecom's golden vectors as a golden file.
func ecomGolden(t testing.TB) []byte {
	modules(t)
	return goldenRaw
}

// withCustomSection returns wasm with a custom section appended: another module (another digest, another
// compilation) that behaves the same.
func withCustomSection(wasm []byte, tag string) []byte {
	name := "kasse-test"
	payload := append([]byte{byte(len(name))}, name...)
	payload = append(payload, tag...)
	out := append([]byte(nil), wasm...)
	out = append(out, 0)
	n := len(payload)
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n != 0 {
			out = append(out, b|0x80)
			continue
		}
		out = append(out, b)
		break
	}
	return append(out, payload...)
}

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func allOps() []string {
	var ops []string
	for _, op := range append(append(append([]abi.Op(nil), abi.Ops...), abi.ExpressOps...), abi.ReportOps...) {
		ops = append(ops, string(op))
	}
	return ops
}

// signedBundle makes a signed bundle of module with golden as its vectors.
func signedBundle(t testing.TB, key ed25519.PrivateKey, name, version string, module, golden []byte) upgrade.Bundle {
	t.Helper()
	manifest := upgrade.NewManifest(name, version, module, golden, allOps()).Encode()
	return upgrade.Bundle{Stem: name, Module: module, Manifest: manifest, Signature: upgrade.Sign(manifest, key), Golden: golden}
}

func runtime(t testing.TB, poolSize int) *plugins.Runtime {
	t.Helper()
	// Busy pools are not what these tests look at: under -race on two cores a call may wait long.
	cfg := plugins.NewRuntimeConfig().WithCallTimeout(callTimeout).WithAcquireTimeout(10 * time.Second)
	if poolSize > 0 {
		cfg = cfg.WithPoolSize(poolSize)
	}
	return plugintest.Runtime(t, cfg)
}

var schemaSet = sync.OnceValues(schemas.Compile)

func compiledSchemas(t testing.TB) *schemas.Set {
	t.Helper()
	set, err := schemaSet()
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// newManager returns a manager trusting pub, closed when the test ends.
func newManager(t testing.TB, pub ed25519.PublicKey, edit func(*upgrade.Config)) *upgrade.Manager {
	t.Helper()
	cfg := upgrade.Config{
		Runtime: runtime(t, 0),
		Schemas: compiledSchemas(t),
		Verify:  upgrade.VerifyOptions{TrustedKeys: []ed25519.PublicKey{pub}},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := upgrade.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return m
}

// initiateInput is a build_initiate input for a session reference.
func initiateInput(ref string) []byte {
	in := abi.Input{
		Op:       abi.OpBuildInitiate,
		Merchant: abi.Merchant{ID: "shop", MerchantSerialNumber: "123456", CallbackPrefix: "https://kasse.example/cb", FallBack: "https://kasse.example/return"},
		Session: abi.Session{ID: "s-" + ref, Reference: ref, ProviderReference: "p-" + ref, State: "pending",
			Amount: 10000, Currency: "NOK", Description: "Test order"},
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	return b
}

func watModule(t testing.TB, name string) []byte {
	t.Helper()
	return wat.Module(t, filepath.Join("..", "plugins", "testdata", "wat", name+".wat"))
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

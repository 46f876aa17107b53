package checkout

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
)

// TestEncodeInputMatchesEncodingJSON holds encodeInput to encoding/json: on every golden input of both
// plugins, and on inputs with strings that need escaping, it writes the same bytes.
func TestEncodeInputMatchesEncodingJSON(t *testing.T) {
	root := plugintest.ModuleRoot(t)
	var inputs []*abi.Input
	for _, dir := range []string{"plugin/vippsecom/testdata/golden", "plugin/vippsepayment/testdata/golden"} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.input.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no golden inputs in %s: %v", dir, err)
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in := new(abi.Input)
			if err := json.Unmarshal(raw, in); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			inputs = append(inputs, in)
			// The same input with its raw members compact, as providers send them (the fast path).
			compact, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			again := new(abi.Input)
			if err := json.Unmarshal(compact, again); err != nil {
				t.Fatal(err)
			}
			if !rawAsIs(again.Callback) || again.Response != nil && !rawAsIs(again.Response.Body) {
				t.Fatalf("%s: compact raw members not taken as they are", f)
			}
			inputs = append(inputs, again)
		}
	}
	odd := []string{"<a&b>", "\u2028\u2029", "\x00\x1f\x7f", "ø\"\\/", "bad \xff utf-8", "\xed\xa0\x80", strings.Repeat("é", 300)}
	for _, s := range odd {
		quoted, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, &abi.Input{Op: abi.OpBuildInitiate, Session: abi.Session{Description: s,
			Lines: []abi.Line{{Name: s, SKU: s, Quantity: -1, UnitPrice: 1 << 62}}},
			Merchant: abi.Merchant{ID: s, Express: &abi.Express{Shipping: abi.Shipping{Methods: []abi.ShippingMethod{{Name: s, Countries: []string{s}}}}}},
			Callback: json.RawMessage(`{"a" : [1, 2.5e3, ` + string(quoted) + `]}`)})
	}
	// Raw members: compact ones are copied as they are, anything encoding/json would change takes goccy.
	for _, raw := range []string{`{"a":[1,2.5e3,"x"]}`, `{"a":"<b>"}`, `{"a":"&"}`, "{\"a\":\"\u2028\u2029\"}", `{"a":"x\"y\\"}`,
		`[1,2]`, `"str"`, `{"a":"é\u00e9"}`, `{"a" :1}`, "{\"a\":\"bad \xff\"}", `{"a":{"b":[true,false,null]}}`, `0`} {
		inputs = append(inputs,
			&abi.Input{Op: abi.OpReadCallback, Callback: json.RawMessage(raw)},
			&abi.Input{Op: abi.OpReadDetails, Response: &abi.Response{Status: 200, Body: json.RawMessage(raw)}, Callback: json.RawMessage(raw)},
			&abi.Input{Op: abi.OpReadDetails, Response: &abi.Response{Status: 500}})
	}
	inputs = append(inputs, &abi.Input{Op: abi.OpShippingOptions, Merchant: abi.Merchant{Express: &abi.Express{Shipping: abi.Shipping{
		Mode: abi.ShippingDynamic, Methods: []abi.ShippingMethod{}, Rules: []abi.ShippingRule{{MinAmount: 5, Methods: []string{"a"}}, {}}}}}},
		&abi.Input{Op: abi.OpShippingOptions, Merchant: abi.Merchant{Express: &abi.Express{}},
			Session: abi.Session{Lines: []abi.Line{{SKU: "", Name: ""}}, CustomerPhone: "4791234567", UserFlow: "WEB_REDIRECT"}},
		&abi.Input{Op: abi.OpBuildCapture, Operation: &abi.Operation{}, Merchant: abi.Merchant{TransactionTextPrefix: "x",
			Express: &abi.Express{Shipping: abi.Shipping{Methods: []abi.ShippingMethod{{Default: true, PickupPoint: true, PostCodePrefixes: []string{"0"}}}}}}})
	for i, in := range inputs {
		want, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeInput(in)
		if err != nil {
			t.Fatalf("input %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("input %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestDecodeOutputMatchesEncodingJSON holds decodeOutput's decoding to encoding/json: every golden output of
// both plugins decodes into the value json.Unmarshal gives.
func TestDecodeOutputMatchesEncodingJSON(t *testing.T) {
	for _, raw := range goldenOutputs(t) {
		var want abi.Output
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeOutput(raw)
		if err != nil {
			if strings.Contains(string(raw), `"ledgers"`) || strings.Contains(string(raw), `"report"`) {
				continue // the report reads' outputs may be too large for the default limits, not the schema
			}
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", raw, *got, want)
		}
	}
	for _, bad := range []string{``, ` `, `{`, `{"ok":true}x`, `{"ok":true} {}`, `nul`, `[]`} {
		if _, err := decodeOutput([]byte(bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// TestDecodeOutputOddStrings checks that strings with invalid UTF-8 and lone surrogates decode as
// encoding/json decodes them (U+FFFD).
func TestDecodeOutputOddStrings(t *testing.T) {
	for _, s := range []string{"\xff", "a\xed\xa0\x80b", `\ud800`, `\ud83d\ude00`, `\u00f8\/\"`, "ø€😀"} {
		raw := []byte(`{"ok":false,"error":{"code":"a","message":"` + s + `"}}`)
		var want abi.Output
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeOutput(raw)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%q: got %q, want %q", s, got.Error.Message, want.Error.Message)
		}
	}
}

// TestRawAsIsMeansUnchanged: whenever rawAsIs takes a raw member as it is, encoding/json writes it
// unchanged, on the golden inputs' raw members and thousands of byte-level mutations of them.
func TestRawAsIsMeansUnchanged(t *testing.T) {
	root := plugintest.ModuleRoot(t)
	var raws [][]byte
	for _, dir := range []string{"plugin/vippsecom/testdata/golden", "plugin/vippsepayment/testdata/golden"} {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*.input.json"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var in abi.Input
			if err := json.Unmarshal(data, &in); err != nil {
				t.Fatal(err)
			}
			for _, r := range []json.RawMessage{in.Callback, responseBody(&in)} {
				if len(r) > 0 {
					compact, _ := json.Marshal(r)
					raws = append(raws, compact)
				}
			}
		}
	}
	if len(raws) == 0 {
		t.Fatal("no raw members in the golden inputs")
	}
	rng := rand.New(rand.NewPCG(3, 2026))
	bytesToTry := []byte(" \t\n\"\\<>&{}[],:0-.eEtfnu\xe2\x80\xa8\xa9\xff")
	taken := 0
	for range 20000 {
		raw := slices.Clone(raws[rng.IntN(len(raws))])
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(raw))
			switch rng.IntN(3) {
			case 0:
				raw[i] = bytesToTry[rng.IntN(len(bytesToTry))]
			case 1:
				raw = slices.Insert(raw, i, bytesToTry[rng.IntN(len(bytesToTry))])
			default:
				raw = slices.Delete(raw, i, i+1)
			}
			if len(raw) == 0 {
				break
			}
		}
		if len(raw) == 0 || !rawAsIs(raw) { // an empty member is left out, never written
			continue
		}
		taken++
		got, err := json.Marshal(json.RawMessage(raw))
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("rawAsIs takes %q, but encoding/json writes %q (%v)", raw, got, err)
		}
	}
	t.Logf("%d of 20000 mutations taken as they are", taken)
}

// TestCallPluginABIVersions runs every golden vector of vipps-ecom through the host's boundary (callPlugin:
// encode in the module's ABI version, call, check and decode the output) on a build of each ABI version,
// and requires the golden output from both: a version 1 module still loads and serves, and version 2's
// binary input gives the plugin exactly what version 1's JSON did.
func TestCallPluginABIVersions(t *testing.T) {
	root := plugintest.ModuleRoot(t)
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join(root, "plugin/vippsecom/testdata/golden/*.input.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	rt := plugintest.Runtime(t, plugins.NewRuntimeConfig().WithCallTimeout(10*time.Second))
	for _, tc := range []struct {
		name    string
		tags    []string
		version int
	}{{"v2", nil, abi.VersionBinary}, {"v1", []string{"kasse_abi1"}, abi.VersionJSON}} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := rt.Load(ctx, "vipps-ecom", "0.0.0-"+tc.name, plugintest.BuildTags(t, "./plugin/vippsecom", tc.tags...))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			if p.ABIVersion() != tc.version {
				t.Fatalf("ABIVersion() = %d, want %d", p.ABIVersion(), tc.version)
			}
			for _, f := range files {
				name := strings.TrimSuffix(filepath.Base(f), ".input.json")
				raw, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				wantRaw, err := os.ReadFile(strings.TrimSuffix(f, ".input.json") + ".output.json")
				if err != nil {
					t.Fatal(err)
				}
				var in abi.Input
				if err := json.Unmarshal(raw, &in); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				out, err := callPlugin(ctx, p, &in)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got, err := json.Marshal(out)
				if err != nil {
					t.Fatal(err)
				}
				var g, w any
				if err := json.Unmarshal(got, &g); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(wantRaw, &w); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s: got %s\nwant %s", name, got, wantRaw)
				}
			}
		})
	}
}

// TestEncodeInputForRaw checks that version 2's encoding takes the raw members as they are when they are
// one JSON value each (white space and all: the guest's Scanner reads them) and refuses them otherwise, as
// version 1's JSON encoding does, so that a guest of either version only ever reads JSON there.
func TestEncodeInputForRaw(t *testing.T) {
	tests := []struct {
		raw, err string
	}{
		{`{"a" : [1, "<b>"]}`, ""},
		{`null`, ""},
		{``, ""},
		{`{"a":`, "not JSON"},
		{`{} {}`, "not one JSON value"},
		{`<html>`, "not JSON"},
	}
	for _, tc := range tests {
		for _, in := range []*abi.Input{{Op: abi.OpReadCallback, Callback: json.RawMessage(tc.raw)},
			{Op: abi.OpReadDetails, Response: &abi.Response{Status: 200, Body: json.RawMessage(tc.raw)}}} {
			got, err := encodeInputFor(abi.VersionBinary, in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("%q: got error %v, want %q", tc.raw, err, tc.err)
				}
				if _, jsonErr := encodeInputFor(abi.VersionJSON, in); jsonErr == nil {
					t.Errorf("%q: version 1's encoding takes it", tc.raw)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%q: %v", tc.raw, err)
			}
			if want := abi.AppendBinary(nil, in); !bytes.Equal(got, want) {
				t.Fatalf("%q: got %x, want %x", tc.raw, got, want)
			}
		}
	}
}

// BenchmarkEncodeInput is the host's encode of a plugin input in each ABI version, on the boundary
// benchmark's largest inputs (order lines, Express rules, a callback body).
func BenchmarkEncodeInput(b *testing.B) {
	root := plugintest.ModuleRoot(b)
	for _, vec := range []string{"build_initiate-regular", "read_callback-reserve-express", "shipping_options-oslo-norway-postcode"} {
		raw, err := os.ReadFile(filepath.Join(root, "plugin/vippsecom/testdata/golden", vec+".input.json"))
		if err != nil {
			b.Fatal(err)
		}
		var in abi.Input
		if err := json.Unmarshal(raw, &in); err != nil {
			b.Fatal(err)
		}
		compact, err := json.Marshal(&in)
		if err != nil {
			b.Fatal(err)
		}
		in = abi.Input{}
		if err := json.Unmarshal(compact, &in); err != nil { // raw members compact, as providers send them
			b.Fatal(err)
		}
		for _, version := range []int{abi.VersionJSON, abi.VersionBinary} {
			b.Run(vec+"/v"+string(rune('0'+version)), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := encodeInputFor(version, &in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

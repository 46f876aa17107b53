package plugins_test

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
)

// TestABIVersions loads the echo plugin built for each ABI version and checks that the runtime knows the
// version and that an input in either encoding reaches the guest in the module's (Call converts), with the
// same answer; a malformed input reaches the guest unchanged and is answered as data.
func TestABIVersions(t *testing.T) {
	ctx := context.Background()
	in := abi.Input{Op: abi.OpBuildInitiate, Merchant: abi.Merchant{ID: "m1"},
		Session: abi.Session{Reference: "order-1", Amount: 1000, Currency: "NOK", Description: "Ørn & <co>",
			Lines: []abi.Line{{Name: "a", Quantity: 1, UnitPrice: 1000}}}}
	js := echoInput("order-1", 1000)
	bin := abi.AppendBinary(nil, &in)
	tests := []struct {
		name    string
		tags    []string
		version int
	}{
		{"default build", nil, abi.VersionBinary},
		{"kasse_abi1 build", []string{"kasse_abi1"}, abi.VersionJSON},
	}
	r := plugintest.Runtime(t, plugins.NewRuntimeConfig().WithPoolSize(2).WithCallTimeout(goodCallTimeout))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := r.Load(ctx, "echo", "1.0.0", plugintest.BuildTags(t, echoPkg, tc.tags...))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			if got := p.ABIVersion(); got != tc.version {
				t.Fatalf("ABIVersion() = %d, want %d", got, tc.version)
			}
			for _, input := range [][]byte{js, bin} {
				out, err := p.Call(ctx, input)
				if err != nil {
					t.Fatal(err)
				}
				if want := echoWant("order-1", 1000); string(out) != want {
					t.Fatalf("input %.20q: got  %s\nwant %s", input, out, want)
				}
			}
			for _, bad := range [][]byte{[]byte(`{"op":`), bin[:5]} {
				out, err := p.Call(ctx, bad)
				if err != nil {
					t.Fatal(err)
				}
				var o abi.Output
				if err := json.Unmarshal(out, &o); err != nil || o.OK || o.Error == nil || o.Error.Code != "invalid_input" {
					t.Fatalf("input %q: got %s, want an invalid_input error", bad, out)
				}
			}
		})
	}
}

func TestConvertInput(t *testing.T) {
	in := &abi.Input{Op: abi.OpReadCallback, Session: abi.Session{ID: "s", Lines: []abi.Line{{Name: "x"}}},
		Callback: json.RawMessage(`{"a":1}`)}
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	bin := abi.AppendBinary(nil, in)
	tests := []struct {
		name    string
		input   []byte
		version int
		want    []byte
	}{
		{"JSON to binary", js, abi.VersionBinary, bin},
		{"binary to JSON", bin, abi.VersionJSON, js},
		{"JSON stays", js, abi.VersionJSON, js},
		{"binary stays", bin, abi.VersionBinary, bin},
		{"bad JSON passes", []byte(`{"op":`), abi.VersionBinary, []byte(`{"op":`)},
		{"bad binary passes", bin[:7], abi.VersionJSON, bin[:7]},
		{"empty passes", nil, abi.VersionBinary, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := plugins.ConvertInput(tc.input, tc.version)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	// What a version 2 guest decodes from the converted JSON is the input itself.
	var d abi.Decoder
	got, err := d.Decode(plugins.ConvertInput(js, abi.VersionBinary))
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

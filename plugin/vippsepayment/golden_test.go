package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
)

// update rewrites the expected outputs from the native plugin: go test ./plugin/vippsepayment -run Golden -update.
// Review the diff by eye before committing it.
var update = flag.Bool("update", false, "rewrite testdata/golden/*.output.json from the native plugin")

const goldenDir = "testdata/golden"

// vector is one golden vector: a recorded plugin input and the output it must produce.
type vector struct {
	name  string
	input []byte
	// want is the expected output, nil if the file does not exist yet.
	want []byte
}

func (v vector) outputPath() string { return filepath.Join(goldenDir, v.name+".output.json") }

// loadVectors reads every testdata/golden/<name>.input.json with its <name>.output.json, sorted by name.
func loadVectors(t testing.TB) []vector {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(goldenDir, "*.input.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no golden vectors in %s", goldenDir)
	}
	sort.Strings(paths)
	vs := make([]vector, 0, len(paths))
	for _, p := range paths {
		v := vector{name: strings.TrimSuffix(filepath.Base(p), ".input.json")}
		if v.input, err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
		v.want, err = os.ReadFile(v.outputPath())
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

// decodeInput decodes a vector's input strictly, so that a misspelt field in a vector fails the test
// instead of silently going missing.
func decodeInput(t testing.TB, name string, raw []byte) *abi.Input {
	t.Helper()
	var in abi.Input
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		t.Fatalf("%s: decode input: %v", name, err)
	}
	return &in
}

// runNative runs a vector through epayment.Handle and returns the output as JSON.
func runNative(t testing.TB, v vector) []byte {
	t.Helper()
	out, err := json.Marshal(epayment.Handle(decodeInput(t, v.name, v.input)))
	if err != nil {
		t.Fatalf("%s: encode output: %v", v.name, err)
	}
	return out
}

// sameJSON reports whether a and b hold the same JSON value (numbers compared by their text).
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	return reflect.DeepEqual(jsonValue(t, a), jsonValue(t, b))
}

func jsonValue(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return v
}

func indent(b []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		return string(b)
	}
	return buf.String()
}

// TestGoldenNative runs every golden vector through epayment.Handle natively.
func TestGoldenNative(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			got := runNative(t, v)
			if *update {
				if err := os.WriteFile(v.outputPath(), []byte(indent(got)+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if v.want == nil {
				t.Fatalf("no %s: run go test -run TestGoldenNative -update and review it", v.outputPath())
			}
			if !sameJSON(t, got, v.want) {
				t.Errorf("output differs from %s\ngot:\n%s\nwant:\n%s", v.outputPath(), indent(got), indent(v.want))
			}
		})
	}
}

// TestGoldenCoverage checks that the vectors cover every ABI operation and this plugin's extra ones, every
// ePayment state and webhook event name, and each error code this plugin reports.
func TestGoldenCoverage(t *testing.T) {
	ops := map[abi.Op]bool{}
	states := map[string]bool{}
	events := map[string]bool{}
	codes := map[string]bool{}
	for _, v := range loadVectors(t) {
		in := decodeInput(t, v.name, v.input)
		ops[in.Op] = true
		var out abi.Output
		if err := json.Unmarshal(v.want, &out); err != nil {
			t.Fatalf("%s: %v", v.outputPath(), err)
		}
		if out.Error != nil {
			codes[out.Error.Code] = true
		}
		if !out.OK {
			continue
		}
		if in.Op == abi.OpReadCallback {
			var ev struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(in.Callback, &ev); err != nil {
				t.Fatalf("%s: event: %v", v.name, err)
			}
			events[ev.Name] = true
		}
		if in.Op == abi.OpReadDetails && in.Response != nil {
			var st struct {
				State string `json:"state"`
			}
			if err := json.Unmarshal(in.Response.Body, &st); err != nil {
				t.Fatalf("%s: answer: %v", v.name, err)
			}
			states[st.State] = true
		}
	}
	for _, op := range append(append([]abi.Op{}, abi.Ops...), epayment.OpBuildEvents, epayment.OpReadEvents, epayment.OpBuildForceApprove) {
		if !ops[op] {
			t.Errorf("no golden vector for op %s", op)
		}
	}
	for _, s := range []string{"CREATED", "AUTHORIZED", "ABORTED", "EXPIRED", "TERMINATED"} {
		if !states[s] {
			t.Errorf("no successful read_details vector with state %s", s)
		}
	}
	for _, e := range []string{"CREATED", "AUTHORIZED", "ABORTED", "EXPIRED", "TERMINATED", "CAPTURED", "REFUNDED", "CANCELLED"} {
		if !events[e] {
			t.Errorf("no successful read_callback vector with event %s", e)
		}
	}
	for _, c := range []string{epayment.CodeInvalidInput, epayment.CodeProviderError, epayment.CodeUnexpectedResponse, epayment.CodeCallbackMismatch, epayment.CodeUnsupportedOp} {
		if !codes[c] {
			t.Errorf("no vector expects error code %s", c)
		}
	}
}

// loadWasm builds this package to WebAssembly and loads it with the host's real plugin runtime.
func loadWasm(t testing.TB) *plugins.Plugin {
	t.Helper()
	wasm := plugintest.Build(t, "./plugin/vippsepayment")
	rt := plugintest.Runtime(t, plugins.NewRuntimeConfig())
	p, err := rt.Load(context.Background(), epayment.Name, epayment.Version, wasm)
	if err != nil {
		t.Fatalf("load %s@%s: %v", epayment.Name, epayment.Version, err)
	}
	return p
}

// TestGoldenWasm runs every golden vector through the built module and requires the golden output, the
// same output as the native run, and byte-identical request bodies.
func TestGoldenWasm(t *testing.T) {
	p := loadWasm(t)
	ctx := context.Background()
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			if v.want == nil {
				t.Fatalf("no %s: run go test -run TestGoldenNative -update and review it", v.outputPath())
			}
			got, err := p.Call(ctx, v.input)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			native := runNative(t, v)
			if !sameJSON(t, got, v.want) {
				t.Errorf("wasm output differs from %s\ngot:\n%s\nwant:\n%s", v.outputPath(), indent(got), indent(v.want))
			}
			if !sameJSON(t, got, native) {
				t.Errorf("wasm output differs from native\nwasm:\n%s\nnative:\n%s", indent(got), indent(native))
			}
			var w, n abi.Output
			if err := json.Unmarshal(got, &w); err != nil {
				t.Fatalf("decode wasm output: %v", err)
			}
			if err := json.Unmarshal(native, &n); err != nil {
				t.Fatal(err)
			}
			if w.Request != nil && n.Request != nil && !bytes.Equal(compact(t, w.Request.Body), compact(t, n.Request.Body)) {
				t.Errorf("request body bytes differ\nwasm:   %s\nnative: %s", w.Request.Body, n.Request.Body)
			}
		})
	}
}

// compact removes insignificant white space (which the host's decoding of the output may add).
func compact(t testing.TB, b []byte) []byte {
	t.Helper()
	if len(b) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("invalid JSON body %q: %v", b, err)
	}
	return buf.Bytes()
}

package plugintest

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
	"time"

	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// update rewrites the expected outputs from the native plugin, in every test binary that imports this
// package: go test ./plugin/vippsecom -run Golden -update. Review the diff by eye before committing it. A
// test package that imports plugintest must not define an -update flag of its own.
var update = flag.Bool("update", false, "rewrite the golden *.output.json files from the native plugin")

// Golden is the golden-vector harness of one plugin: a directory of recorded inputs with the outputs they
// must produce, run through the plugin's handler natively ([Golden.TestNative]) and through the module
// built from its package in the host's real runtime ([Golden.TestWasm]).
//
// Dir holds <name>.input.json files, each with its <name>.output.json. Running the tests with -update
// writes the output files from the native handler instead of comparing them.
type Golden struct {
	// Dir is the directory of the vectors, relative to the test's package (usually "testdata/golden").
	Dir string
	// Handle is the plugin's handler, run natively.
	Handle sdk.HandlerFunc
	// Package is the plugin's main package as Build takes it, e.g. "./plugin/vippsecom".
	Package string
	// Name and Version are what the built module is loaded as (plugins.Runtime.Load).
	Name, Version string
	// Tags are build tags for the module, e.g. "kasse_abi1" to run the vectors on a plugin ABI version 1
	// build.
	Tags []string
}

// Vector is one golden vector: a recorded plugin input and the output it must produce.
type Vector struct {
	// Name is the file name without ".input.json".
	Name string
	// Input is the content of <Name>.input.json.
	Input []byte
	// Want is the expected output, nil if OutputPath does not exist yet.
	Want []byte
	// OutputPath is the path of <Name>.output.json.
	OutputPath string
}

// Case is a Vector with its input and expected output decoded, for tests that check what the vectors
// cover or compare them with a provider's API description.
type Case struct {
	Vector
	// In is the decoded input.
	In *abi.Input
	// Out is the decoded expected output.
	Out abi.Output
}

// Vectors reads every <name>.input.json in g.Dir with its <name>.output.json, sorted by name. The test
// fails if there are none.
func (g *Golden) Vectors(t testing.TB) []Vector {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(g.Dir, "*.input.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no golden vectors in %s", g.Dir)
	}
	sort.Strings(paths)
	vs := make([]Vector, 0, len(paths))
	for _, p := range paths {
		v := Vector{Name: strings.TrimSuffix(filepath.Base(p), ".input.json")}
		v.OutputPath = filepath.Join(g.Dir, v.Name+".output.json")
		if v.Input, err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
		v.Want, err = os.ReadFile(v.OutputPath)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

// Cases returns the Vectors with their inputs and expected outputs decoded. The test fails on an input that
// does not decode strictly (see DecodeInput) and on a missing or invalid output file.
func (g *Golden) Cases(t testing.TB) []Case {
	t.Helper()
	vs := g.Vectors(t)
	cs := make([]Case, 0, len(vs))
	for _, v := range vs {
		c := Case{Vector: v, In: DecodeInput(t, v.Name, v.Input)}
		if err := json.Unmarshal(v.Want, &c.Out); err != nil {
			t.Fatalf("%s: %v", v.OutputPath, err)
		}
		cs = append(cs, c)
	}
	return cs
}

// RequireCoverage fails the test for every op in ops that no case calls and every code in codes that no
// case's expected output reports.
func RequireCoverage(t testing.TB, cases []Case, ops []abi.Op, codes []string) {
	t.Helper()
	called := map[abi.Op]bool{}
	reported := map[string]bool{}
	for _, c := range cases {
		called[c.In.Op] = true
		if c.Out.Error != nil {
			reported[c.Out.Error.Code] = true
		}
	}
	for _, op := range ops {
		if !called[op] {
			t.Errorf("no golden vector for op %s", op)
		}
	}
	for _, code := range codes {
		if !reported[code] {
			t.Errorf("no vector expects error code %s", code)
		}
	}
}

// DecodeInput decodes the input of the vector called name strictly, so that a misspelt field in a vector
// fails the test instead of silently going missing.
func DecodeInput(t testing.TB, name string, raw []byte) *abi.Input {
	t.Helper()
	var in abi.Input
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		t.Fatalf("%s: decode input: %v", name, err)
	}
	return &in
}

// RunNative runs a vector through g.Handle and returns the output as JSON.
func (g *Golden) RunNative(t testing.TB, v Vector) []byte {
	t.Helper()
	out, err := json.Marshal(g.Handle(DecodeInput(t, v.Name, v.Input)))
	if err != nil {
		t.Fatalf("%s: encode output: %v", v.Name, err)
	}
	return out
}

// TestNative runs every vector natively, one subtest each, and requires its golden output; with -update
// it writes the golden outputs instead.
func (g *Golden) TestNative(t *testing.T) {
	for _, v := range g.Vectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			got := g.RunNative(t, v)
			if *update {
				if err := os.WriteFile(v.OutputPath, []byte(indent(got)+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if v.Want == nil {
				t.Fatalf("no %s: run go test -run TestGoldenNative -update and review it", v.OutputPath)
			}
			if !sameJSON(t, got, v.Want) {
				t.Errorf("output differs from %s\ngot:\n%s\nwant:\n%s", v.OutputPath, indent(got), indent(v.Want))
			}
		})
	}
}

// Load builds g.Package to WebAssembly and loads it with the host's real plugin runtime.
func (g *Golden) Load(t testing.TB) *plugins.Plugin {
	t.Helper()
	wasm := BuildTags(t, g.Package, g.Tags...)
	// Deadline checks stay on, but the deadline is generous: the vectors check outputs, not speed, and a
	// busy 2-core machine stalls a call for longer than the default 100 ms now and then.
	rt := Runtime(t, plugins.NewRuntimeConfig().WithCallTimeout(10*time.Second))
	p, err := rt.Load(context.Background(), g.Name, g.Version, wasm)
	if err != nil {
		t.Fatalf("load %s@%s: %v", g.Name, g.Version, err)
	}
	return p
}

// TestWasm runs every vector through the built module (Load), one subtest each, and requires the golden
// output, the same output as the native run, and byte-identical request bodies. The input reaches the
// module in its ABI version's encoding, as the host sends it: the vector's JSON for version 1, the decoded
// vector through abi.AppendBinary for version 2.
func (g *Golden) TestWasm(t *testing.T) {
	p := g.Load(t)
	ctx := context.Background()
	for _, v := range g.Vectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			if v.Want == nil {
				t.Fatalf("no %s: run go test -run TestGoldenNative -update and review it", v.OutputPath)
			}
			input := v.Input
			if p.ABIVersion() == abi.VersionBinary {
				input = abi.AppendBinary(nil, DecodeInput(t, v.Name, v.Input))
			}
			got, err := p.Call(ctx, input)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			native := g.RunNative(t, v)
			if !sameJSON(t, got, v.Want) {
				t.Errorf("wasm output differs from %s\ngot:\n%s\nwant:\n%s", v.OutputPath, indent(got), indent(v.Want))
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

// indent indents b for a message, or returns it as it is if it is not JSON.
func indent(b []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		return string(b)
	}
	return buf.String()
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

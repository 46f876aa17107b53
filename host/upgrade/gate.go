package upgrade

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/kassehq/kasse/host/fence"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

// Vector is one golden vector: a plugin input and the output it must produce.
type Vector struct {
	// Name identifies the vector in messages.
	Name string `json:"name"`
	// Input is the abi.Input as JSON.
	Input json.RawMessage `json:"input"`
	// Output is the expected abi.Output as JSON; it is compared as a JSON value, not as bytes.
	Output json.RawMessage `json:"output"`
}

// GoldenFile is the format of <stem>.golden.json.
type GoldenFile struct {
	// Vectors are the version's own vectors, at least one.
	Vectors []Vector `json:"vectors"`
}

// ParseGolden decodes a golden file. Every vector needs a name, an input and an output.
func ParseGolden(data []byte) ([]Vector, error) {
	var f GoldenFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, &RefusedError{Rule: RuleGolden, Err: fmt.Errorf("decode golden vectors: %w", err)}
	}
	if len(f.Vectors) == 0 {
		return nil, &RefusedError{Rule: RuleGolden, Err: errors.New("golden file has no vectors")}
	}
	for i, v := range f.Vectors {
		if v.Name == "" || len(v.Input) == 0 || len(v.Output) == 0 {
			return nil, &RefusedError{Rule: RuleGolden, Err: fmt.Errorf("golden vector %d lacks a name, input or output", i)}
		}
	}
	return f.Vectors, nil
}

// ReadGoldenDir reads a directory of <name>.input.json and <name>.output.json pairs (the layout of
// plugin/vippsecom/testdata/golden) into a golden file, sorted by name.
func ReadGoldenDir(dir string) ([]byte, error) {
	inputs, err := filepath.Glob(filepath.Join(dir, "*.input.json"))
	if err != nil {
		return nil, fmt.Errorf("upgrade: golden dir %s: %w", dir, err)
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("upgrade: golden dir %s: no *.input.json", dir)
	}
	sort.Strings(inputs)
	var f GoldenFile
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.json")
		input, err := os.ReadFile(in)
		if err != nil {
			return nil, fmt.Errorf("upgrade: %w", err)
		}
		output, err := os.ReadFile(filepath.Join(dir, name+".output.json"))
		if err != nil {
			return nil, fmt.Errorf("upgrade: golden vector %s: %w", name, err)
		}
		var ci, co bytes.Buffer
		if err := json.Compact(&ci, input); err != nil {
			return nil, fmt.Errorf("upgrade: golden vector %s: input: %w", name, err)
		}
		if err := json.Compact(&co, output); err != nil {
			return nil, fmt.Errorf("upgrade: golden vector %s: output: %w", name, err)
		}
		f.Vectors = append(f.Vectors, Vector{Name: name, Input: ci.Bytes(), Output: co.Bytes()})
	}
	// One compact vector per line: small, and readable in a diff.
	var out bytes.Buffer
	out.WriteString("{\"vectors\": [\n")
	for i, v := range f.Vectors {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("upgrade: encode golden vector %s: %w", v.Name, err)
		}
		out.Write(b)
		if i < len(f.Vectors)-1 {
			out.WriteByte(',')
		}
		out.WriteByte('\n')
	}
	out.WriteString("]}\n")
	return out.Bytes(), nil
}

// GoldenOps returns the operations the golden vectors exercise, sorted.
func GoldenOps(golden []byte) ([]string, error) {
	vs, err := ParseGolden(golden)
	if err != nil {
		return nil, err
	}
	var ops []string
	for _, v := range vs {
		var in struct {
			Op string `json:"op"`
		}
		if json.Unmarshal(v.Input, &in) == nil && in.Op != "" && !slices.Contains(ops, in.Op) {
			ops = append(ops, in.Op)
		}
	}
	slices.Sort(ops)
	return ops, nil
}

// Expectations of a conformance vector.
const (
	// expectRequest: ok true with a request (build operations).
	expectRequest = "request"
	// expectPayment: ok true with a payment (read operations).
	expectPayment = "payment"
	// expectError: ok false with an error.
	expectError = "error"
	// expectValid: any output the schema accepts.
	expectValid = "valid"
)

// conformanceVector is one of the host's conformance vectors: an input every payment plugin must answer,
// and what kind of answer it must give. Every answer must also pass the output schema and be the same
// when the input is sent again (plugins are deterministic).
type conformanceVector struct {
	Name string `json:"name"`
	// Op is the operation; the vector runs only for plugins that declare it (every op in abi.Ops is
	// required). Empty means the vector always runs.
	Op string `json:"op,omitempty"`
	// Input is the input as JSON, or RawInput its exact bytes (for inputs that are not JSON).
	Input    json.RawMessage `json:"input,omitempty"`
	RawInput string          `json:"rawInput,omitempty"`
	// Expect is one of request, payment, error, valid.
	Expect string `json:"expect"`
}

//go:embed conformance.json
var conformanceJSON []byte

func conformanceVectors() ([]conformanceVector, error) {
	var f struct {
		Vectors []conformanceVector `json:"vectors"`
	}
	dec := json.NewDecoder(bytes.NewReader(conformanceJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("upgrade: conformance vectors: %w", err)
	}
	return f.Vectors, nil
}

// Caller is what the gate needs of a loaded plugin version: *plugins.Plugin satisfies it.
type Caller interface {
	Call(ctx context.Context, input []byte) ([]byte, error)
}

// Gate runs a loaded version through its own golden vectors and the host's conformance vectors, and
// returns the first failure as a *RefusedError (RuleGolden or RuleConformance). A version serves nothing
// before its gate passes. set validates outputs against the plugin output schema; it is required.
func Gate(ctx context.Context, p Caller, v *Verified, set *schemas.Set) error {
	refuse := func(rule Rule, err error) error {
		return &RefusedError{Plugin: v.Manifest.Name, Version: v.Manifest.Version, Rule: rule, Err: err}
	}
	if set == nil {
		return errors.New("upgrade: gate: no schema set")
	}
	for _, g := range v.Golden {
		got, err := p.Call(ctx, g.Input)
		if err != nil {
			return refuse(RuleGolden, fmt.Errorf("vector %s: %w", g.Name, err))
		}
		eq, err := sameJSON(got, g.Output)
		if err != nil {
			return refuse(RuleGolden, fmt.Errorf("vector %s: %w", g.Name, err))
		}
		if !eq {
			return refuse(RuleGolden, fmt.Errorf("vector %s: output differs from the expected one at %s",
				g.Name, strings.Join(diffPointers(got, g.Output, 3), ", ")))
		}
		if err := fenced(g.Input, got); err != nil {
			return refuse(RuleFence, fmt.Errorf("vector %s: %w", g.Name, err))
		}
	}
	vectors, err := conformanceVectors()
	if err != nil {
		return err
	}
	for _, c := range vectors {
		if c.Op != "" && !slices.Contains(v.Manifest.Ops, c.Op) {
			continue
		}
		input := []byte(c.RawInput)
		if len(c.Input) > 0 {
			input = c.Input
		}
		first, err := p.Call(ctx, input)
		if err != nil {
			return refuse(RuleConformance, fmt.Errorf("vector %s: %w", c.Name, err))
		}
		if err := set.Validate(schemas.PluginOutput, first); err != nil {
			return refuse(RuleConformance, fmt.Errorf("vector %s: output fails its schema: %w", c.Name, err))
		}
		var out struct {
			OK      bool            `json:"ok"`
			Request json.RawMessage `json:"request"`
			Payment json.RawMessage `json:"payment"`
			Error   json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(first, &out); err != nil {
			return refuse(RuleConformance, fmt.Errorf("vector %s: decode output: %w", c.Name, err))
		}
		switch {
		case c.Expect == expectRequest && (!out.OK || len(out.Request) == 0):
			return refuse(RuleConformance, fmt.Errorf("vector %s: want ok with a request, got %s", c.Name, summary(first)))
		case c.Expect == expectPayment && (!out.OK || len(out.Payment) == 0):
			return refuse(RuleConformance, fmt.Errorf("vector %s: want ok with a payment, got %s", c.Name, summary(first)))
		case c.Expect == expectError && (out.OK || len(out.Error) == 0):
			return refuse(RuleConformance, fmt.Errorf("vector %s: want an error, got %s", c.Name, summary(first)))
		}
		if err := fenced(input, first); err != nil {
			return refuse(RuleFence, fmt.Errorf("vector %s: %w", c.Name, err))
		}
		again, err := p.Call(ctx, input)
		if err != nil {
			return refuse(RuleConformance, fmt.Errorf("vector %s, second call: %w", c.Name, err))
		}
		if !bytes.Equal(first, again) {
			return refuse(RuleConformance, fmt.Errorf("vector %s: not deterministic: the same input gave different outputs", c.Name))
		}
	}
	return nil
}

// summary describes an output without its values (which may hold personal data): ok and the top-level keys.
func summary(out []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(out, &m) != nil {
		return "an output that is not a JSON object"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return fmt.Sprintf("ok=%s with keys %s", m["ok"], strings.Join(keys, ","))
}

// sameJSON reports whether a and b are the same JSON value, numbers compared by their text.
func sameJSON(a, b []byte) (bool, error) {
	va, err := jsonValue(a)
	if err != nil {
		return false, fmt.Errorf("output is not JSON: %w", err)
	}
	vb, err := jsonValue(b)
	if err != nil {
		return false, fmt.Errorf("expected output is not JSON: %w", err)
	}
	return reflect.DeepEqual(va, vb), nil
}

func jsonValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// diffPointers returns up to limit JSON pointers at which a and b differ, without their values.
func diffPointers(a, b []byte, limit int) []string {
	va, errA := jsonValue(a)
	vb, errB := jsonValue(b)
	if errA != nil || errB != nil {
		return []string{"/"}
	}
	var out []string
	var walk func(ptr string, x, y any)
	walk = func(ptr string, x, y any) {
		if len(out) >= limit {
			return
		}
		mx, okx := x.(map[string]any)
		my, oky := y.(map[string]any)
		if okx && oky {
			keys := map[string]bool{}
			for k := range mx {
				keys[k] = true
			}
			for k := range my {
				keys[k] = true
			}
			sorted := make([]string, 0, len(keys))
			for k := range keys {
				sorted = append(sorted, k)
			}
			sort.Strings(sorted)
			for _, k := range sorted {
				walk(ptr+"/"+escapePointer(k), mx[k], my[k])
			}
			return
		}
		ax, okx := x.([]any)
		ay, oky := y.([]any)
		if okx && oky && len(ax) == len(ay) {
			for i := range ax {
				walk(ptr+"/"+strconv.Itoa(i), ax[i], ay[i])
			}
			return
		}
		if !reflect.DeepEqual(x, y) {
			if ptr == "" {
				ptr = "/"
			}
			out = append(out, ptr)
		}
	}
	walk("", va, vb)
	return out
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// fenced applies the host's fence (host/fence) to a vector's output when it is a built request: a version
// whose own vectors change a value kasse decides is refused before it serves.
func fenced(input, output []byte) error {
	var in abi.Input
	if json.Unmarshal(input, &in) != nil {
		return nil
	}
	var out abi.Output
	if json.Unmarshal(output, &out) != nil || !out.OK || out.Request == nil {
		return nil
	}
	return fence.Request(&in, out.Request)
}

package plugintest

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
)

// recorder is a testing.TB that records Errorf messages instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// writeVectors writes files (name to content) into a new directory and returns it.
func writeVectors(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestVectors(t *testing.T) {
	dir := writeVectors(t, map[string]string{
		"b.input.json":  `{"op":"build_capture"}`,
		"a.input.json":  `{"op":"build_initiate"}`,
		"a.output.json": `{"ok":true}`,
		"notes.txt":     "not a vector",
	})
	got := (&Golden{Dir: dir}).Vectors(t)
	want := []Vector{
		{Name: "a", Input: []byte(`{"op":"build_initiate"}`), Want: []byte(`{"ok":true}`), OutputPath: filepath.Join(dir, "a.output.json")},
		{Name: "b", Input: []byte(`{"op":"build_capture"}`), OutputPath: filepath.Join(dir, "b.output.json")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestRunNative compares native outputs with golden files that differ in layout (matching) and in an
// amount (not matching).
func TestRunNative(t *testing.T) {
	dir := writeVectors(t, map[string]string{
		"fail.input.json":  `{"op":"read_capture"}`,
		"fail.output.json": "{\n  \"ok\": false,\n  \"error\": {\"message\": \"no\", \"code\": \"invalid_input\"}\n}\n",
		"ok.input.json":    `{"op":"build_capture"}`,
		"ok.output.json":   `{"ok":true,"payment":{"state":"captured","capturedAmount":999,"authorizedAmount":-1,"refundedAmount":-1,"cancelledAmount":-1}}`,
	})
	g := &Golden{Dir: dir, Handle: func(in *abi.Input) *abi.Output {
		if in.Op == abi.OpBuildCapture {
			return &abi.Output{OK: true, Payment: &abi.Payment{State: "captured", CapturedAmount: 1000, AuthorizedAmount: -1, RefundedAmount: -1, CancelledAmount: -1}}
		}
		return &abi.Output{Error: &abi.Error{Code: "invalid_input", Message: "no"}}
	}}
	cases := g.Cases(t)
	if len(cases) != 2 || cases[0].In.Op != abi.OpReadCapture || cases[0].Out.Error.Code != "invalid_input" || !cases[1].Out.OK {
		t.Fatalf("cases decoded wrongly: %+v", cases)
	}
	if got := g.RunNative(t, cases[0].Vector); !sameJSON(t, got, cases[0].Want) {
		t.Errorf("RunNative = %s, want %s", got, cases[0].Want)
	}
	if got := g.RunNative(t, cases[1].Vector); sameJSON(t, got, cases[1].Want) {
		t.Errorf("RunNative = %s matches %s", got, cases[1].Want)
	}
}

func TestSameJSON(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{`{"a":1,"b":[true,null]}`, "{\"b\": [true, null],\n \"a\": 1}", true},
		{`{"a":1}`, `{"a":2}`, false},
		{`{"a":1}`, `{"a":1,"b":null}`, false},
		// Numbers are compared by their text: an output must not change how it writes an amount.
		{`1000`, `1.0e3`, false},
	} {
		if got := sameJSON(t, []byte(c.a), []byte(c.b)); got != c.same {
			t.Errorf("sameJSON(%s, %s) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}

func TestRequireCoverage(t *testing.T) {
	cases := []Case{
		{In: &abi.Input{Op: abi.OpBuildInitiate}, Out: abi.Output{OK: true}},
		{In: &abi.Input{Op: abi.OpReadInitiate}, Out: abi.Output{Error: &abi.Error{Code: "provider_error"}}},
	}
	r := &recorder{TB: t}
	RequireCoverage(r, cases, []abi.Op{abi.OpBuildInitiate, abi.OpReadInitiate, abi.OpBuildCapture}, []string{"provider_error", "invalid_input"})
	want := []string{"no golden vector for op build_capture", "no vector expects error code invalid_input"}
	if !reflect.DeepEqual(r.errs, want) {
		t.Errorf("errors %q, want %q", r.errs, want)
	}
}

func TestBuildFor(t *testing.T) {
	s := &Spec{BuildFor: map[abi.Op]abi.Op{"read_events": "build_events"}}
	for read, build := range map[abi.Op]abi.Op{
		abi.OpReadInitiate: abi.OpBuildInitiate,
		abi.OpReadCapture:  abi.OpBuildCapture,
		abi.OpReadCancel:   abi.OpBuildCancel,
		abi.OpReadRefund:   abi.OpBuildRefund,
		abi.OpReadDetails:  abi.OpBuildDetails,
		"read_events":      "build_events",
		abi.OpReadCallback: "",
		abi.OpBuildCapture: "",
	} {
		if got := s.buildFor(read); got != build {
			t.Errorf("buildFor(%s) = %q, want %q", read, got, build)
		}
	}
}

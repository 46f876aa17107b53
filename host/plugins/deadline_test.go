package plugins

import (
	"strings"
	"testing"
)

// module assembles a wasm module from sections (id, payload).
func module(sections ...[]byte) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		out = append(out, s[0])
		out = appendULEB(out, uint64(len(s)-1))
		out = append(out, s[1:]...)
	}
	return out
}

var (
	typeSec = []byte{1, 1, 0x60, 0, 0}                    // one type: () -> ()
	funcSec = []byte{3, 1, 0}                             // one function of type 0
	memSec  = []byte{5, 1, 0, 1}                          // one memory, min 1 page
	loopFn  = []byte{10, 1, 5, 0, 0x03, 0x40, 0x0B, 0x0B} // body: loop end end
)

// TestInstrument checks the rewrite's refusals and that it puts a check after every loop header and on
// entry to the functions marked checked.
func TestInstrument(t *testing.T) {
	tests := []struct {
		name    string
		wasm    []byte
		checked []bool
		errHas  string
		checks  int
	}{
		{"loop gets a check", module(typeSec, funcSec, memSec, loopFn), nil, "", 1},
		{"checked entry and loop", module(typeSec, funcSec, memSec, loopFn), []bool{true}, "", 2},
		{"no memory: no tick", module(typeSec, funcSec, loopFn), nil, "", 1},
		{"start section", module(typeSec, funcSec, memSec, []byte{8, 0}, loopFn), nil, "start section", 0},
		{"reserved export", module(typeSec, funcSec, memSec,
			append(append([]byte{7, 1, byte(len(deadlineExport))}, deadlineExport...), 0, 0), loopFn),
			nil, "reserved for the host", 0},
		{"touches the deadline global", module(typeSec, funcSec, memSec, []byte{10, 1, 5, 0, 0x23, 0, 0x1A, 0x0B}), nil, "global 0 out of range", 0},
		{"not wasm", []byte("garbage!"), nil, "not a wasm module", 0},
		{"truncated", module(typeSec, funcSec, memSec, loopFn)[:20], nil, "truncated", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := instrument(tc.wasm, tc.checked)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), deadlineExport) {
				t.Error("no deadline export")
			}
			// global.get $deadline (index 0: the module has no globals) followed by if-unreachable-end.
			if n := strings.Count(string(out), "\x23\x00\x04\x40\x00\x0B"); n != tc.checks {
				t.Errorf("%d checks, want %d", n, tc.checks)
			}
			if _, err := parseCallGraph(out); err != nil {
				t.Errorf("rewritten module does not parse: %v", err)
			}
		})
	}
}

// BenchmarkInstrument measures the load-time rewrite of the vipps-ecom module.
func BenchmarkInstrument(b *testing.B) {
	wasm := buildEcom(b)
	checked, err := checkedFunctions(wasm)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wasm)))
	for b.Loop() {
		if _, err := instrument(wasm, checked); err != nil {
			b.Fatal(err)
		}
	}
}

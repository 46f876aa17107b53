package plugins

import (
	"github.com/kassehq/kasse/host/internal/wat"
	"path/filepath"
	"testing"
)

// TestCheckedFunctions checks which functions of the hand-written modules get a deadline check on entry.
// Function indices count the module's imports first.
func TestCheckedFunctions(t *testing.T) {
	tests := []struct {
		module string
		want   []int
	}{
		{"ok", nil},
		{"spin", nil},      // the loop header checks it
		{"grow", nil},      // likewise
		{"bomb", []int{3}}, // $f calls itself outside any loop
		{"deep", []int{3}},
		// $f40 is function 3 (after abi_version, input and yield), $f39 function 4, ..., $f0 function 43;
		// each calls the next twice, so costs double down the chain until they pass entryCheckCost.
		{"chain", chainChecked()},
		{"env_import", nil},
	}
	if len(chainChecked()) < 2 {
		t.Fatalf("chain.wat should need several checks, got %v", chainChecked())
	}
	for _, tc := range tests {
		t.Run(tc.module, func(t *testing.T) {
			wasm := wat.Module(t, filepath.Join("testdata", "wat", tc.module+".wat"))
			checked, err := checkedFunctions(wasm)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for i, c := range checked {
				if c {
					got = append(got, i)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("checked %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("checked %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// chainChecked computes the functions of chain.wat that must be checked: walking from $f40 (cost 3 code
// bytes) down to $f0, each function costs 6 bytes of its own plus twice its callee's cost, unless that
// callee is checked.
func chainChecked() []int {
	var checked []int
	callee := int64(3)
	for k := 39; k >= 0; k-- {
		cost := 6 + 2*callee
		idx := 3 + (40 - k) // $f40 is function 3, $f39 function 4, ... $f0 function 43
		if cost > entryCheckCost {
			checked = append([]int{idx}, checked...)
			callee = 0
			continue
		}
		callee = cost
	}
	// Sorted ascending.
	for i, j := 0, len(checked)-1; i < j; i, j = i+1, j-1 {
		checked[i], checked[j] = checked[j], checked[i]
	}
	return checked
}

func TestCheckedFunctionsRejectsGarbage(t *testing.T) {
	for _, wasm := range [][]byte{nil, []byte("\x00asm"), []byte("\x00asm\x01\x00\x00\x00\x0a\x05"), []byte("not wasm at all")} {
		if _, err := checkedFunctions(wasm); err == nil {
			t.Errorf("%q: no error", wasm)
		}
	}
}

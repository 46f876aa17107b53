package plugintest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// The helpers below hold a plugin's fast readers of provider bodies (sdk.Scanner, sdk.ReadObject) to its
// general reader (encoding/json): a differential test over the golden bodies and their mutations, and a
// fuzz target seeded with the same bodies.

// GoldenBodies returns the provider bodies of the golden inputs matching pattern (e.g.
// "../testdata/golden/*.input.json"): every callback and every provider answer's body.
func GoldenBodies(t testing.TB, pattern string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	var bodies [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var in abi.Input
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(in.Callback) > 0 {
			bodies = append(bodies, in.Callback)
		}
		if in.Response != nil && len(in.Response.Body) > 0 {
			bodies = append(bodies, in.Response.Body)
		}
	}
	return bodies
}

// CheckFastReads runs checkAll (each fast reader held to the general one on a body, reporting which
// accepted it) on every body and every mutation of it for keys, logs the counts, and fails when a reader
// accepted fewer than 100 documents: a reader that falls back on everything tests nothing.
func CheckFastReads(t *testing.T, bodies [][]byte, keys []string, checkAll func(testing.TB, []byte) []bool) {
	t.Helper()
	var docs, accepted int
	var perReader []int
	for _, body := range bodies {
		for _, m := range Mutations(body, keys) {
			docs++
			oks := checkAll(t, m)
			perReader = append(perReader, make([]int, len(oks)-len(perReader))...)
			for i, ok := range oks {
				if ok {
					accepted++
					perReader[i]++
				}
			}
		}
	}
	t.Logf("%d documents, %d fast reads (by reader %v)", docs, accepted, perReader)
	for i, n := range perReader {
		if n < 100 {
			t.Errorf("reader %d: only %d fast reads", i, n)
		}
	}
}

// Mutations returns body changed in the ways a fast reader must notice, for each of keys it holds: cut
// short, keys in other case, repeated members, values of other types, escapes, white space.
func Mutations(body []byte, keys []string) [][]byte {
	out := [][]byte{body}
	for i := 0; i < len(body); i += 7 {
		out = append(out, body[:i])
	}
	s := string(body)
	for _, k := range keys {
		q := `"` + k + `"`
		if !strings.Contains(s, q) {
			continue
		}
		out = append(out,
			[]byte(strings.Replace(s, q, strings.ToUpper(q), 1)),
			[]byte(strings.Replace(s, q, `"`+strings.ToUpper(k[:1])+k[1:]+`"`, 1)),
			[]byte(strings.Replace(s, "{"+q, "{"+q+`:1,`+q, 1)),
			[]byte(strings.Replace(s, q+":", q+`:null,"x":`, 1)),
			[]byte(strings.Replace(s, q+":", q+`:true,"y":`, 1)),
			[]byte(strings.Replace(s, q+":", q+`:{},"z":`, 1)),
			[]byte(strings.Replace(s, q+":", q+`:[1,"2"],"w":`, 1)),
			[]byte(strings.Replace(s, q+":", q+`:"12.0","v":`, 1)),
			[]byte(strings.Replace(s, q+":", q+`:1e400,"u":`, 1)),
			[]byte(strings.Replace(s, q, `"\u006f`+q[2:], 1)),
		)
	}
	out = append(out, []byte(" \n"+s+"\t"), []byte(s+"x"), []byte(strings.ReplaceAll(s, `":"`, `":"\u00f8\/\ud800 `)),
		[]byte(strings.ReplaceAll(s, `":"`, "\":\"\xff")), []byte(strings.ReplaceAll(s, `,"`, `, "`)))
	return out
}

// SameAsGeneral checks that where read accepts body, general decodes it into the same value. It reports
// whether read accepted it.
func SameAsGeneral[T any](t testing.TB, body []byte, read func(*sdk.Scanner, *T) error, general func([]byte, any) error) bool {
	var s sdk.Scanner
	s.Reset(body)
	var fast T
	if s.Peek() != '{' || read(&s, &fast) != nil || s.End() != nil {
		return false
	}
	var slow T
	if err := general(body, &slow); err != nil {
		t.Errorf("fast path accepts, encoding/json refuses (%v):\n%s", err, body)
		return true
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Errorf("fast path and encoding/json differ on\n%s\nfast %+v\nslow %+v", body, fast, slow)
	}
	return true
}

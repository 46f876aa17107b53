package epayment

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// goldenBodies returns the callbacks and provider answers of the golden vectors.
func goldenBodies(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob("../testdata/golden/*.input.json")
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

// mutations returns body changed in the ways the fast path must notice: cut short, keys in other case,
// repeated members, values of other types, escapes, white space.
func mutations(body []byte) [][]byte {
	out := [][]byte{body}
	for i := 0; i < len(body); i += 7 {
		out = append(out, body[:i])
	}
	s := string(body)
	for _, k := range []string{"reference", "amount", "state", "aggregate", "value", "currency", "capturedAmount",
		"msn", "success", "name", "idempotencyKey", "pspReference", "authorizedAmount"} {
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

// sameAsEncodingJSON checks that where read accepts body, encoding/json decodes it into the same value.
func sameAsEncodingJSON[T any](t testing.TB, body []byte, read func(*sdk.Scanner, *T) error) bool {
	var s sdk.Scanner
	s.Reset(body)
	var fast T
	if s.Peek() != '{' || read(&s, &fast) != nil || s.End() != nil {
		return false
	}
	var slow T
	if err := decodeObject(body, &slow); err != nil {
		t.Errorf("fast path accepts, encoding/json refuses (%v):\n%s", err, body)
		return true
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Errorf("fast path and encoding/json differ on\n%s\nfast %+v\nslow %+v", body, fast, slow)
	}
	return true
}

func checkAllReaders(t testing.TB, body []byte) int {
	n := 0
	for _, ok := range []bool{
		sameAsEncodingJSON(t, body, readEvent),
		sameAsEncodingJSON(t, body, readPaymentState),
	} {
		if ok {
			n++
		}
	}
	return n
}

// TestFastDecodeMatchesEncodingJSON holds the sdk.Scanner readers to encoding/json on every golden body
// and many mutations of each: what the fast path accepts decodes to the same value.
func TestFastDecodeMatchesEncodingJSON(t *testing.T) {
	var docs, accepted int
	for _, body := range goldenBodies(t) {
		for _, m := range mutations(body) {
			docs++
			accepted += checkAllReaders(t, m)
		}
	}
	t.Logf("%d documents, %d fast reads", docs, accepted)
	if accepted < 100 {
		t.Errorf("only %d fast reads", accepted)
	}
}

// FuzzFastDecode holds the fast readers to encoding/json on any input.
func FuzzFastDecode(f *testing.F) {
	for _, b := range goldenBodies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAllReaders(t, body)
		for _, read := range []func([]byte) error{
			func(b []byte) error { var e event; return decodeFast(b, &e, readEvent) },
			func(b []byte) error { var p paymentState; return decodeFast(b, &p, readPaymentState) },
		} {
			_ = read(bytes.Clone(body)) // must not panic
		}
	})
}

package adaptertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// objectKey finds member names: the quoted string and the colon after it.
var objectKey = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"\s*:\s*`)

// JSONVariants returns body and variants of it for a decoder's differential test (see SameAsEncodingJSON):
// bytes deleted and replaced throughout; every member name in other cases, escaped, with Unicode
// characters that fold to its letters (U+212A KELVIN SIGN, U+017F LONG S) and lengthened; every member's
// value replaced by values of every JSON type (numbers with fractions, exponents, beyond int64, strings
// holding numbers, lone surrogates, escapes); and every member preceded by a member of the same name
// with another value.
func JSONVariants(body []byte) [][]byte {
	out := [][]byte{body}
	join := func(parts ...[]byte) { out = append(out, bytes.Join(parts, nil)) }
	chars := [][]byte{[]byte(`"`), []byte("}"), []byte("]"), []byte(","), []byte("0"), []byte("x"), []byte(`\`),
		[]byte("\xff"), []byte(":"), []byte("{"), []byte("["), []byte("-")}
	// Byte edits at about 4,000 places at most, spread over the body: they find the syntax cases; the
	// member edits below find the rest.
	step := 1 + len(body)/2048
	for i := 0; i < len(body); i += step {
		join(body[:i], body[i+1:])
		join(body[:i], chars[(i/step)%len(chars)], body[i+1:])
	}
	values := []string{`null`, `true`, `"x"`, `""`, `0`, `-0`, `-1`, `1.5`, `1e2`, `"1"`, `"1.5"`, `"abc"`,
		`99999999999999999999`, `[]`, `{}`, `[1]`, `[{}]`, `{"a":1}`, `"\ud800"`, `"\u00e9\/"`, `"a\u0000b"`}
	for _, m := range objectKey.FindAllSubmatchIndex(body, -1) {
		keyStart, keyEnd, valStart := m[2], m[3], m[1]
		key := string(body[keyStart:keyEnd])
		names := []string{strings.ToUpper(key), strings.ToUpper(key[:min(1, len(key))]) + key[min(1, len(key)):],
			key + "x"}
		if key != "" && key[0] < unicode.MaxASCII {
			names = append(names, fmt.Sprintf(`\u%04x`, key[0])+key[1:])
		}
		if strings.Contains(key, "k") {
			names = append(names, strings.Replace(key, "k", "\u212a", 1))
		}
		if strings.Contains(key, "s") {
			names = append(names, strings.Replace(key, "s", "\u017f", 1))
		}
		for _, n := range names {
			join(body[:keyStart], []byte(n), body[keyEnd:])
		}
		dec := json.NewDecoder(bytes.NewReader(body[valStart:]))
		var raw json.RawMessage
		if dec.Decode(&raw) != nil {
			continue
		}
		valEnd := valStart + int(dec.InputOffset())
		for _, v := range values {
			join(body[:valStart], []byte(v), body[valEnd:])
		}
		for _, v := range []string{`null`, `"x"`, `{}`, `[]`, `1`} {
			join(body[:keyStart-1], []byte(`"`+key+`":`+v+`,`), body[keyStart-1:])
		}
	}
	return out
}

// SameAsEncodingJSON checks that decode, handed a zero T for each of bodies, gives what an encoding/json
// Decoder with UseNumber gives: the same error message, or no error and a deep-equal value. It reports
// how many bodies each decoder accepted.
func SameAsEncodingJSON[T any](t *testing.T, decode func([]byte, *T) error, bodies [][]byte) {
	t.Helper()
	accepted := 0
	for _, body := range bodies {
		var want, got T
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		wantErr := dec.Decode(&want)
		gotErr := decode(body, &got)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("body %q:\ndecode error %v\nencoding/json %v", body, gotErr, wantErr)
		}
		if wantErr == nil {
			accepted++
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("body %q:\ndecode        %+v\nencoding/json %+v", body, got, want)
			}
		}
	}
	t.Logf("%d bodies, %d decoded, %d refused", len(bodies), accepted, len(bodies)-accepted)
}

package adapters

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// DecodeJSON decodes the first JSON value of body into *v exactly as an encoding/json Decoder with
// UseNumber does, and returns that Decoder's error unchanged (its *json.UnmarshalTypeError names the
// field), so that an adapter's refusals and their pointers do not depend on which decoder ran. v must point
// to a zero value, and T must hold no interface values (the fast path would give them float64 numbers).
//
// It first tries goccy/go-json, about a tenth of encoding/json's cost for a platform order of a few
// kilobytes of which kasse reads a dozen members, and keeps its result only when the body is valid UTF-8
// (goccy keeps invalid bytes that encoding/json replaces with U+FFFD) and goccy succeeded. Every other
// body, data after the first value included, is decoded again by encoding/json from a zero value, which
// decides. See RATIONALE.md, "Why platform bodies are decoded with goccy/go-json first".
func DecodeJSON[T any](body []byte, v *T) error {
	if utf8.Valid(body) {
		if gojson.Unmarshal(body, v) == nil {
			return nil
		}
		var zero T
		*v = zero
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return dec.Decode(v)
}

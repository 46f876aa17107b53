package sdk

import (
	"unicode/utf8"
)

// JSON is an append-based writer of JSON values, for building provider request bodies without
// encoding/json. Strings are escaped exactly as encoding/json escapes them (HTML-safe, U+2028 and U+2029
// escaped, invalid UTF-8 replaced by \ufffd), so the bytes equal json.Marshal's for the same values.
//
// Methods with a key (Str, Int, ObjField, ...) write an object member; methods ending in Elem, and Obj and
// Arr, write a value at the top level or into an array. Every method returns the writer, so calls chain:
//
//	var w sdk.JSON
//	w.Obj().Str("reference", ref).ObjField("amount").Int("value", 1000).Str("currency", "NOK").End().End()
//	body := w.Bytes()
//
// The writer does not check that calls nest correctly; misuse produces invalid JSON, which the host
// rejects. A JSON is reused across calls with Reset, which keeps its buffer.
type JSON struct {
	buf []byte
	// depth is the number of open containers. For the container at depth i < 64, bit i of more is set
	// once it has a member (the next one needs a comma) and bit i of objs is set if it is an object. Bits
	// instead of slices: in a wasm guest every allocation costs about a microsecond, and a request body is
	// rarely more than a few levels deep. Deeper levels use deep (bit 0: more, bit 1: object).
	depth      int
	more, objs uint64
	deep       []byte
}

// initialSize is the buffer a writer reserves on first use: most provider request bodies fit, so the
// buffer grows at most once or twice instead of once per doubling from a few bytes.
const initialSize = 512

// Reset empties the writer, keeping its buffer.
func (j *JSON) Reset() *JSON {
	j.buf = j.buf[:0]
	j.depth, j.more, j.objs = 0, 0, 0
	j.deep = j.deep[:0]
	return j
}

// Grow makes room for at least n more bytes, for a caller that knows roughly how much it will write.
func (j *JSON) Grow(n int) *JSON {
	if n > 0 && cap(j.buf)-len(j.buf) < n {
		j.buf = append(make([]byte, 0, len(j.buf)+n), j.buf...)
	}
	return j
}

// Bytes returns the JSON written so far. It aliases the writer's buffer until the next Reset.
func (j *JSON) Bytes() []byte { return j.buf }

// Len returns the number of bytes written so far.
func (j *JSON) Len() int { return len(j.buf) }

// sep writes the comma before a value or member, if one is needed.
func (j *JSON) sep() {
	if cap(j.buf) == 0 {
		j.buf = make([]byte, 0, initialSize)
	}
	d := j.depth - 1
	switch {
	case d < 0:
	case d < 64:
		bit := uint64(1) << d
		if j.more&bit != 0 {
			j.buf = append(j.buf, ',')
		}
		j.more |= bit
	default:
		if j.deep[d-64]&1 != 0 {
			j.buf = append(j.buf, ',')
		}
		j.deep[d-64] |= 1
	}
}

func (j *JSON) key(k string) {
	j.sep()
	j.buf = appendString(j.buf, k)
	j.buf = append(j.buf, ':')
}

func (j *JSON) open(c byte) *JSON {
	j.buf = append(j.buf, c)
	d := j.depth
	j.depth++
	if d < 64 {
		bit := uint64(1) << d
		j.more &^= bit
		if c == '{' {
			j.objs |= bit
		} else {
			j.objs &^= bit
		}
		return j
	}
	var level byte
	if c == '{' {
		level = 2
	}
	j.deep = append(j.deep[:d-64], level)
	return j
}

// Obj begins an object value (at the top level or in an array).
func (j *JSON) Obj() *JSON {
	j.sep()
	return j.open('{')
}

// Arr begins an array value (at the top level or in an array).
func (j *JSON) Arr() *JSON {
	j.sep()
	return j.open('[')
}

// ObjField begins an object as the member k of the current object.
func (j *JSON) ObjField(k string) *JSON {
	j.key(k)
	return j.open('{')
}

// ArrField begins an array as the member k of the current object.
func (j *JSON) ArrField(k string) *JSON {
	j.key(k)
	return j.open('[')
}

// End ends the innermost open object or array.
func (j *JSON) End() *JSON {
	if j.depth == 0 {
		return j
	}
	j.depth--
	d := j.depth
	obj := false
	if d < 64 {
		obj = j.objs&(uint64(1)<<d) != 0
	} else {
		obj = j.deep[d-64]&2 != 0
		j.deep = j.deep[:d-64]
	}
	if obj {
		j.buf = append(j.buf, '}')
	} else {
		j.buf = append(j.buf, ']')
	}
	return j
}

// Str writes the string member k: v.
func (j *JSON) Str(k, v string) *JSON {
	j.key(k)
	j.buf = appendString(j.buf, v)
	return j
}

// Int writes the integer member k: v.
func (j *JSON) Int(k string, v int64) *JSON {
	j.key(k)
	j.buf = appendInt(j.buf, v)
	return j
}

// Bool writes the boolean member k: v.
func (j *JSON) Bool(k string, v bool) *JSON {
	j.key(k)
	j.buf = appendBool(j.buf, v)
	return j
}

// Null writes the member k: null.
func (j *JSON) Null(k string) *JSON {
	j.key(k)
	j.buf = append(j.buf, "null"...)
	return j
}

// Raw writes the member k with an already encoded JSON value, written as is (an empty v writes null).
func (j *JSON) Raw(k string, v []byte) *JSON {
	j.key(k)
	j.buf = appendRaw(j.buf, v)
	return j
}

// StrElem writes a string value into the current array (or at the top level).
func (j *JSON) StrElem(v string) *JSON {
	j.sep()
	j.buf = appendString(j.buf, v)
	return j
}

// IntElem writes an integer value into the current array (or at the top level).
func (j *JSON) IntElem(v int64) *JSON {
	j.sep()
	j.buf = appendInt(j.buf, v)
	return j
}

// BoolElem writes a boolean value into the current array (or at the top level).
func (j *JSON) BoolElem(v bool) *JSON {
	j.sep()
	j.buf = appendBool(j.buf, v)
	return j
}

// RawElem writes an already encoded JSON value into the current array (or at the top level); an empty v
// writes null.
func (j *JSON) RawElem(v []byte) *JSON {
	j.sep()
	j.buf = appendRaw(j.buf, v)
	return j
}

func appendRaw(b, v []byte) []byte {
	if len(v) == 0 {
		return append(b, "null"...)
	}
	return append(b, v...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

const hexDigits = "0123456789abcdef"

// safeASCII[c] is true for the ASCII bytes encoding/json writes unescaped (with HTML escaping on).
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// plain8 reports whether all eight bytes of w are ASCII that encoding/json writes unescaped: no control
// byte, no '"', '\\', '<', '>' or '&', and nothing at or above 0x80. w must be 8 bytes long.
func plain8(w string) bool {
	x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	bad := x & highs                    // non-ASCII
	bad |= (x - 0x20*ones) & ^x & highs // a byte below 0x20
	bad |= hasZero(x ^ ('"' * ones))
	bad |= hasZero(x ^ ('\\' * ones))
	bad |= hasZero(x ^ ('<' * ones))
	bad |= hasZero(x ^ ('>' * ones))
	bad |= hasZero(x ^ ('&' * ones))
	return bad == 0
}

// appendString appends s as a JSON string, byte for byte as encoding/json writes it.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip eight plain bytes at a time: in wasm every loop iteration costs a deadline check, so a
		// word-at-a-time scan is several times faster than a byte loop on typical text.
		for i+8 <= len(s) && plain8(s[i:i+8]) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Package randsession makes sessions filled at random, every field zero or not, with strings that
// encoders are known to treat differently (HTML, non-ASCII, U+2028, invalid UTF-8, control characters).
// Tests use it to check that a fast encoder writes exactly encoding/json's bytes.
package randsession

import (
	"math/rand/v2"
	"reflect"
	"time"

	"github.com/kassehq/kasse/host/payment"
)

var strs = []string{"", "a", "order <b>&</b> 'x' \"y\"", "Tromsø æøå", "line\u2028sep\u2029", "bad \xff\xfe utf8",
	"tab\t nl\n ctl\x01", "https://x.test/?a=1&b=2", "€ 😀"}

// New returns a session filled from rng.
func New(rng *rand.Rand) *payment.Session {
	var s payment.Session
	fill(rng, reflect.ValueOf(&s).Elem(), 0)
	return &s
}

func fill(rng *rand.Rand, v reflect.Value, depth int) {
	if rng.IntN(4) == 0 || depth > 6 {
		return // left zero
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(strs[rng.IntN(len(strs))])
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(rng.Int64N(1<<40) - 1<<39)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.UnixMicro(rng.Int64N(1 << 52)).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(rng, v.Field(i), depth+1)
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(rng, v.Elem(), depth+1)
	case reflect.Slice:
		n := rng.IntN(4)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(rng, s.Index(i), depth+1)
		}
		v.Set(s)
	}
}

package sdk

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
)

// fullInput is an input with every field set.
const fullInput = `{"op":"build_initiate",
 "merchant":{"id":"m1","merchantSerialNumber":"123456","callbackPrefix":"https://shop.example/cb","fallBack":"https://shop.example/return?o=1&x=<2>","transactionTextPrefix":"Shop: ",
  "express":{"shippingDetailsPrefix":"https://k/s","consentRemovalPrefix":"https://k/c","shipping":{"mode":"dynamic",
   "methods":[{"id":"posten","name":"Posten","cost":4900,"default":true,"countries":["NO","SE"],"postCodePrefixes":[]},
    {"id":"pickup","name":"Hent","cost":0,"pickupPoint":false,"countries":null,"postCodePrefixes":["0",null]}],
   "rules":[{"methods":["posten"],"countries":["NO"],"minAmount":100000,"cost":0},{"cost":1}]}}},
 "session":{"id":"s1","reference":"order-1","providerReference":"p-1","state":"pending","amount":12345,"currency":"NOK",
  "description":"Ørn \"kaffe\" \\ \u00e9 \ud83d\ude00 \/","customerPhone":"4712345678","userFlow":"NATIVE_REDIRECT","authorizedAmount":-1,"capturedAmount":0,
  "refundedAmount":9223372036854775807,"cancelledAmount":-9223372036854775808,
  "lines":[{"sku":"a-1","name":"Kaffe","quantity":2,"unitPrice":5000},{"name":"Te","quantity":1,"unitPrice":2345},null]},
 "operation":{"amount":100,"text":"part"},
 "response":{"status":201,"body":{"token":"t", "url" : "https://x/y", "n":[1,2.5e3,true,null]}},
 "callback":{"a":[{}],"b":"c"},
 "unknown":{"deep":[[[{"x":"\u0000"}]]]}}`

func stdDecode(data []byte) (*abi.Input, error) {
	var in abi.Input
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, err
	}
	return &in, nil
}

func TestDecodeInput(t *testing.T) {
	tests := []struct {
		name  string
		input string
	}{
		{"full", fullInput},
		{"empty object", `{}`},
		{"null", ` null `},
		{"nulls", `{"op":null,"merchant":null,"session":{"amount":null,"lines":null,"id":null},"operation":null,"response":null,"callback":null}`},
		{"empty lines", `{"session":{"lines":[]}}`},
		{"express nulls", `{"merchant":{"express":{"shipping":{"methods":null,"rules":[],"mode":null}}}}`},
		{"express null", `{"merchant":{"express":null}}`},
		{"bools", `{"merchant":{"express":{"shipping":{"methods":[{"default":false,"pickupPoint":null},{"default":true}]}}}}`},
		{"pointer then null", `{"operation":{"amount":1},"operation":null}`},
		{"repeated object merges", `{"merchant":{"id":"a"},"merchant":{"fallBack":"b"}}`},
		{"raw body null", `{"response":{"status":null,"body":null}}`},
		{"escaped key", `{"o\u0070":"x","session":{"\u0061mount":7}}`},
		{"invalid utf8", "{\"op\":\"a\xffb\xc3\",\"session\":{\"description\":\"\xed\xa0\x80\"}}"},
		{"lone surrogates", `{"op":"\ud800\u0041\udc00x\ud83d"}`},
		{"whitespace", " \t\r\n{ \"op\" : \"x\" , \"session\" : { \"amount\" : -0 } } \n"},
		{"unknown values", `{"x":[1,-2.5,3e+10,"s",{"a":{}},[],true,false,null],"y":{}}`},
		{"long strings", `{"op":"` + strings.Repeat("abcdefgh", 20) + `","session":{"description":"` + strings.Repeat("é€", 30) + `"}}`},
	}
	var d decoder
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := stdDecode([]byte(tc.input))
			if err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			got, err := d.decode([]byte(tc.input))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestDecodeInputErrors(t *testing.T) {
	tests := []struct {
		input string
		want  string
	}{
		{``, "unexpected end of JSON input"},
		{`{`, "unexpected end of JSON input"},
		{`{"op":"x"`, "unexpected end of JSON input"},
		{`{"op":"x"}}`, "invalid character '}' after top-level value at offset 10"},
		{`{"op":x}`, "invalid character 'x' looking for beginning of value at offset 6"},
		{`{"op":1}`, "cannot unmarshal value into field op"},
		{`{"session":{"amount":"1"}}`, "cannot unmarshal value into field session.amount"},
		{`{"session":{"amount":1.5}}`, "cannot unmarshal number 1.5 into field session.amount"},
		{`{"session":{"amount":1e2}}`, "cannot unmarshal number 1e2 into field session.amount"},
		{`{"session":{"amount":9223372036854775808}}`, "cannot unmarshal number 9223372036854775808 into field session.amount"},
		{`{"session":{"amount":01}}`, "invalid character '1' after object key:value pair at offset 22"},
		{`{"session":{"lines":{}}}`, "cannot unmarshal value into field session.lines"},
		{`{"session":{"lines":[1]}}`, "cannot unmarshal value into field session.lines[]"},
		{`{"session":[]}`, "cannot unmarshal value into field session"},
		{`{"merchant":{"express":{"shipping":{"methods":[{"default":1}]}}}}`, "cannot unmarshal value into field merchant.express.shipping.methods[].default"},
		{`{"merchant":{"express":{"shipping":{"rules":[{"countries":[1]}]}}}}`, "cannot unmarshal value into field merchant.express.shipping.rules[].countries[]"},
		{`{"merchant":{"express":{"shipping":{"rules":[1]}}}}`, "cannot unmarshal value into field merchant.express.shipping.rules[]"},
		{`{"merchant":{"express":{"shipping":{"rules":[{}`, "unexpected end of JSON input"},
		{`{"merchant":{"express":{"shipping":{"methods":[{},]}}}}`, "invalid character ']' looking for beginning of value at offset 50"},
		{`{"operation":"x"}`, "cannot unmarshal value into field operation"},
		{`[]`, "cannot unmarshal value into field abi.Input"},
		{"{\"op\":\"a\x01\"}", `invalid character '\x01' in string literal at offset 8`},
		{`{"op":"\x"}`, `invalid character 'x' in string escape code at offset 8`},
		{`{"op":"\u12g4"}`, `invalid character 'g' in \u hexadecimal character escape at offset 11`},
		{`{"x":[1,]}`, "invalid character ']' looking for beginning of value at offset 8"},
		{`{"x":{"a" 1}}`, "invalid character '1' after object key at offset 10"},
		{`{"x":tru}`, "invalid character '}' in literal true at offset 8"},
		{`{"x":-}`, "invalid character '}' in numeric literal at offset 6"},
		{`{"x":1.}`, "invalid character '}' after decimal point in numeric literal at offset 7"},
		{`{"x":1e}`, "invalid character '}' in exponent of numeric literal at offset 7"},
		{`{"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, "exceeded max depth"},
	}
	var d decoder
	for _, tc := range tests {
		if _, err := stdDecode([]byte(tc.input)); err == nil {
			t.Errorf("%q: encoding/json accepts it", tc.input)
		}
		_, err := d.decode([]byte(tc.input))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got error %v, want %q", tc.input, err, tc.want)
		}
	}
}

// TestDecodeReuse decodes differently shaped inputs with one decoder and checks that nothing leaks from
// one input into the next.
func TestDecodeReuse(t *testing.T) {
	inputs := []string{
		fullInput,
		`{"session":{"lines":[{"name":"x"}]}}`,
		`{"op":"read_callback","callback":[1]}`,
		fullInput,
		`{}`,
	}
	var d decoder
	for i, input := range inputs {
		want, err := stdDecode([]byte(input))
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.decode([]byte(input))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %d: got %+v\nwant %+v", i, got, want)
		}
	}
}

func TestDecodeAllocations(t *testing.T) {
	var d decoder
	data := []byte(fullInput)
	if _, err := d.decode(data); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := d.decode(data); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per decode, want 0", n)
	}
}

// comparableInput reports whether encoding/json and the decoder are meant to agree on data: no object repeats a
// key, and no key differs from a field name only in case (see the decoder's documentation).
func comparableInput(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		keys   map[string]bool
		expect bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return true // invalid JSON: both must reject it
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			key, _ := tok.(string)
			if top.keys[key] {
				return false
			}
			top.keys[key] = true
			for _, f := range fieldNames[1:] {
				if key != f && strings.EqualFold(key, f) {
					return false
				}
			}
			top.expect = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, expect: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].expect = true
		}
		if len(stack) == 0 && !dec.More() {
			return true
		}
	}
}

func FuzzDecodeInput(f *testing.F) {
	for _, s := range []string{fullInput, `{}`, `null`, `{"merchant":{"express":{"shipping":{"methods":[{"countries":["a"]}]}}}}`, `{"session":{"lines":[]}}`, `{"op":"\ud800"}`,
		`{"response":{"status":1,"body":null}}`, `{"session":{"amount":-0}}`, `[1]`, `{"x":[{"y":[]}]}`} {
		f.Add([]byte(s))
	}
	var d decoder
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := d.decode(data)
		want, stdErr := stdDecode(data)
		if !comparableInput(data) {
			return
		}
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("%q: decode error %v, encoding/json error %v", data, err, stdErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", data, got, want)
		}
	})
}

func TestLookup(t *testing.T) {
	for id := fOp; id < numFields; id++ {
		if got := lookup([]byte(fieldNames[id])); got != id {
			t.Errorf("lookup(%q) = %d, want %d", fieldNames[id], got, id)
		}
	}
	for _, key := range []string{"", "o", "OP", "opp", "merchantSerialNumbe", "merchantSerialNumberX", "ids", "i", "amount\x00",
		strings.Repeat("x", 24), strings.Repeat("x", 25), "transactionTextPrefix\x00\x00\x00"} {
		if got := lookup([]byte(key)); got != fUnknown {
			t.Errorf("lookup(%q) = %d, want unknown", key, got)
		}
	}
}

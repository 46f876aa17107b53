package provider

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/kassehq/kasse/adapters/adaptertest"
	"github.com/kassehq/kasse/plugin/abi"
)

// referenceCodec is how buildBody decoded and encoded a body before decodeBody and encodeBody:
// encoding/json both ways. They are held to it.
var referenceCodec = codec{
	decode: func(raw []byte) (any, bool, error) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var doc any
		err := dec.Decode(&doc)
		return doc, false, err
	},
	encode: func(doc any, _ bool) ([]byte, error) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			return nil, err
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
	},
}

// goldenBodies returns the request bodies of the plugins' golden build outputs, as stored (indented) and
// compact (as the plugins build them), by file.
func goldenBodies(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range []string{"vippsecom", "vippsepayment"} {
		files, err := filepath.Glob(filepath.Join("..", "..", "plugin", dir, "testdata", "golden", "build_*.output.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("golden outputs of %s: %v", dir, err)
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var o struct {
				Request *struct {
					Body json.RawMessage `json:"body"`
				} `json:"request"`
			}
			if json.Unmarshal(b, &o) != nil || o.Request == nil || len(o.Request.Body) == 0 {
				continue
			}
			name := dir + "/" + filepath.Base(f)
			out[name] = o.Request.Body
			var c bytes.Buffer
			if err := json.Compact(&c, o.Request.Body); err != nil {
				t.Fatal(err)
			}
			out[name+"#compact"] = c.Bytes()
		}
	}
	if len(out) < 40 {
		t.Fatalf("only %d golden bodies", len(out))
	}
	return out
}

// injections are the injections the differential test asks for: the eCom plugin's own, the same with
// values encoding/json escapes, and pointers that replace, add, index or fail.
var injections = []struct {
	inject []abi.Injection
	values map[string]string
}{
	{[]abi.Injection{{Pointer: "/merchantInfo/authToken", Value: abi.InjectCallbackToken}},
		map[string]string{abi.InjectCallbackToken: "tok-3kq9x7mfa2bcdeghijklmnprstvwxyz01"}},
	{[]abi.Injection{{Pointer: "/merchantInfo/authToken", Value: abi.InjectCallbackToken}},
		map[string]string{abi.InjectCallbackToken: "<b>&amp;\u2028\u2029\"\\\x01\t\xff\xfe ø"}},
	{[]abi.Injection{{Pointer: "/transaction/amount", Value: "a"}, {Pointer: "/x~1y~0z", Value: "b"},
		{Pointer: "/customerInfo/mobileNumber", Value: "a"}}, map[string]string{"a": "1", "b": "\u2028"}},
	{[]abi.Injection{{Pointer: "/orderLines/0/name", Value: "a"}, {Pointer: "/receipt/orderLines/1/id", Value: "a"}},
		map[string]string{"a": "line"}},
	{[]abi.Injection{{Pointer: "/nowhere/deep", Value: "a"}}, map[string]string{"a": "x"}},
	{[]abi.Injection{{Pointer: "", Value: "a"}}, map[string]string{"a": "x"}},
}

// TestBuildBodyMatchesEncodingJSON feeds the golden build bodies and their adaptertest.JSONVariants
// mutations through buildBody's injection with decodeBody and encodeBody and with encoding/json: the same
// bytes, or the same error.
func TestBuildBodyMatchesEncodingJSON(t *testing.T) {
	bodies := goldenBodies(t)
	names := make([]string, 0, len(bodies))
	for name := range bodies {
		names = append(names, name)
	}
	sort.Strings(names)
	n, injected := 0, 0
	for _, name := range names {
		for _, v := range adaptertest.JSONVariants(bodies[name]) {
			raw := bytes.TrimSpace(v)
			if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
				continue // buildBody refuses these before it decodes
			}
			for _, inj := range injections {
				n++
				want, werr := injectWith(raw, inj.inject, inj.values, referenceCodec)
				got, gerr := injectWith(raw, inj.inject, inj.values, codec{decode: decodeBody, encode: encodeBody})
				if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) || !bytes.Equal(got, want) {
					t.Fatalf("%s %q %v:\nencoding/json %s, %v\nnew           %s, %v", name, raw, inj.inject, want, werr, got, gerr)
				}
				if gerr == nil {
					injected++
				}
			}
		}
	}
	t.Logf("%d bodies and injections, %d injected", n, injected)
}

// BenchmarkBuildBody is buildBody on the eCom initiate body the eCom plugin builds (compact), with its
// callback token injection, with encoding/json as before and with decodeBody and encodeBody.
func BenchmarkBuildBody(b *testing.B) {
	bodies := goldenBodies(b)
	for _, name := range []string{"vippsecom/build_initiate-regular.output.json#compact", "vippsecom/build_initiate-express-static.output.json#compact"} {
		raw := bodies[name]
		inj := injections[0]
		for _, c := range []struct {
			name string
			c    codec
		}{{"encoding-json", referenceCodec}, {"goccy", codec{decode: decodeBody, encode: encodeBody}}} {
			b.Run(filepath.Base(name)+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := injectWith(raw, inj.inject, inj.values, c.c); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// FuzzInject holds the injection with decodeBody and encodeBody to encoding/json on any body and any
// injected value, seeded with the golden build bodies.
func FuzzInject(f *testing.F) {
	for _, b := range goldenBodies(f) {
		f.Add(b, "tok-3kq9x7mfa2bcdeghijklmnprstvwxyz01")
	}
	f.Add([]byte(`{"merchantInfo":{"a":"\ud800","a":1e400,"b":"\u2028 \xff <&>"}}`), "\u2029<\xff")
	f.Fuzz(func(t *testing.T, body []byte, value string) {
		raw := bytes.TrimSpace(body)
		if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
			return // buildBody refuses these before it decodes
		}
		inject := []abi.Injection{{Pointer: "/merchantInfo/authToken", Value: "v"}}
		values := map[string]string{"v": value}
		want, werr := injectWith(raw, inject, values, referenceCodec)
		got, gerr := injectWith(raw, inject, values, codec{decode: decodeBody, encode: encodeBody})
		if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) || !bytes.Equal(got, want) {
			t.Fatalf("%q %q:\nencoding/json %s, %v\nnew           %s, %v", raw, value, want, werr, got, gerr)
		}
	})
}

package fence

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kassehq/kasse/adapters/adaptertest"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
)

// referenceDecode is how Request decoded a body before decodeBody: encoding/json's Decoder with UseNumber,
// the first value of the body. decodeBody is held to it.
func referenceDecode(body []byte) (any, error) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := dec.Decode(&doc)
	return doc, err
}

// goldenCase is a request a real plugin builds for a golden input, with that input.
type goldenCase struct {
	name string
	in   *abi.Input
	req  abi.Request
}

// goldenRequests runs the real plugins (as Go) on their golden build inputs and returns the requests they
// build, and the bodies of the golden build outputs as stored (indented).
func goldenRequests(t testing.TB) ([]goldenCase, [][]byte) {
	t.Helper()
	var cases []goldenCase
	var stored [][]byte
	for _, p := range []struct {
		dir    string
		handle func(*abi.Input) *abi.Output
	}{{"vippsecom", ecom.Handle}, {"vippsepayment", epayment.Handle}} {
		dir := filepath.Join("..", "..", "plugin", p.dir, "testdata", "golden")
		files, err := filepath.Glob(filepath.Join(dir, "build_*.input.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("golden inputs of %s: %v", p.dir, err)
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var in abi.Input
			if json.Unmarshal(b, &in) != nil {
				continue
			}
			if out := p.handle(&in); out.OK && out.Request != nil {
				cases = append(cases, goldenCase{name: p.dir + "/" + filepath.Base(f), in: &in, req: *out.Request})
			}
		}
		outs, err := filepath.Glob(filepath.Join(dir, "build_*.output.json"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(outs)
		for _, f := range outs {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Request *struct {
					Body json.RawMessage `json:"body"`
				} `json:"request"`
			}
			if json.Unmarshal(b, &out) == nil && out.Request != nil && len(out.Request.Body) > 0 {
				stored = append(stored, out.Request.Body)
			}
		}
	}
	if len(cases) < 20 || len(stored) < 20 {
		t.Fatalf("only %d requests and %d stored bodies", len(cases), len(stored))
	}
	return cases, stored
}

// TestDecodeBodyMatchesEncodingJSON holds decodeBody to encoding/json's Decoder with UseNumber on the
// golden build bodies (as the plugins build them and as stored) and their adaptertest.JSONVariants
// mutations: the same value, or an error both times.
func TestDecodeBodyMatchesEncodingJSON(t *testing.T) {
	cases, stored := goldenRequests(t)
	bodies := stored
	for _, c := range cases {
		bodies = append(bodies, c.req.Body)
	}
	n := 0
	for _, body := range bodies {
		for _, v := range adaptertest.JSONVariants(body) {
			n++
			want, werr := referenceDecode(v)
			got, gerr := decodeBody(v)
			if (werr == nil) != (gerr == nil) || (werr == nil && !reflect.DeepEqual(got, want)) {
				t.Fatalf("%q:\nencoding/json %#v, %v\ndecodeBody    %#v, %v", v, want, werr, got, gerr)
			}
		}
	}
	t.Logf("%d bodies", n)
}

// TestRequestVerdictOnVariants: for every golden request whose body is replaced by a mutation of it,
// Request gives the verdict it gives with encoding/json's tree (the same refusal, or none).
func TestRequestVerdictOnVariants(t *testing.T) {
	cases, _ := goldenRequests(t)
	n, refused := 0, 0
	for _, c := range cases {
		for _, v := range adaptertest.JSONVariants(c.req.Body) {
			n++
			req := c.req
			req.Body = v
			got := Request(c.in, &req)
			want := requestWith(c.in, &req, referenceDecode)
			if !sameVerdict(got, want) {
				t.Fatalf("%s %q:\nwant %v\ngot  %v", c.name, v, want, got)
			}
			if got != nil {
				refused++
			}
		}
	}
	t.Logf("%d requests, %d refused", n, refused)
}

func sameVerdict(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var ea, eb *Error
	return errors.As(a, &ea) && errors.As(b, &eb) && *ea == *eb
}

func benchCase(b *testing.B, name string) goldenCase {
	cases, _ := goldenRequests(b)
	for _, c := range cases {
		if c.name == name {
			return c
		}
	}
	b.Fatalf("no golden case %s", name)
	return goldenCase{}
}

// BenchmarkRequest is the fence's check of real requests (the bodies the plugins build for their golden
// inputs: an eCom and an ePayment initiate, an ePayment capture), with the body decoded by encoding/json
// as before decodeBody and by decodeBody.
func BenchmarkRequest(b *testing.B) {
	for _, name := range []string{"vippsecom/build_initiate-regular.input.json",
		"vippsepayment/build_initiate-web-redirect.input.json", "vippsepayment/build_capture-partial.input.json"} {
		c := benchCase(b, name)
		short := strings.TrimSuffix(strings.Replace(strings.Replace(name, "build_", "", 1), "/", "-", 1), ".input.json")
		for _, d := range []struct {
			name   string
			decode func([]byte) (any, error)
		}{{"encoding-json", referenceDecode}, {"decodeBody", decodeBody}} {
			b.Run(short+"/"+d.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					req := c.req
					if err := requestWith(c.in, &req, d.decode); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// FuzzDecodeBody holds decodeBody to encoding/json's Decoder with UseNumber on any bytes, seeded with the
// golden build bodies.
func FuzzDecodeBody(f *testing.F) {
	cases, stored := goldenRequests(f)
	for _, b := range stored {
		f.Add([]byte(b))
	}
	for _, c := range cases {
		f.Add([]byte(c.req.Body))
	}
	f.Add([]byte(`{"a":"\ud800","a":1e400,"b":"\u2028 \xff"} trailing`))
	f.Fuzz(func(t *testing.T, body []byte) {
		want, werr := referenceDecode(body)
		got, gerr := decodeBody(body)
		if (werr == nil) != (gerr == nil) || (werr == nil && !reflect.DeepEqual(got, want)) {
			t.Fatalf("%q:\nencoding/json %#v, %v\ndecodeBody    %#v, %v", body, want, werr, got, gerr)
		}
	})
}

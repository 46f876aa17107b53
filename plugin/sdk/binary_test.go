package sdk

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
)

// The tests here hold ABI version 2's binary input to version 1's JSON one: for every input the host may
// build, what the SDK decodes from abi.AppendBinary must be exactly what it decodes from the input's JSON
// (json.Marshal, which is what the host sent in version 1).

// sameAsJSON encodes in both ways, decodes each with a dispatcher of its version and compares. Raw members
// are compared as JSON values: the JSON encoding compacts them, the binary one carries them as they are.
func sameAsJSON(t *testing.T, v1, v2 *dispatcher, in *abi.Input) {
	t.Helper()
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := v1.decode(js)
	if err != nil {
		t.Fatalf("JSON decode: %v", err)
	}
	bin := abi.AppendBinary(nil, in)
	got, err := v2.decode(bin)
	if err != nil {
		t.Fatalf("binary decode: %v", err)
	}
	g, w := *got, *want
	sameRaw(t, "callback", g.Callback, w.Callback)
	g.Callback, w.Callback = nil, nil
	if (g.Response == nil) != (w.Response == nil) {
		t.Fatalf("response: got %v, want %v", g.Response, w.Response)
	}
	if g.Response != nil {
		sameRaw(t, "response.body", g.Response.Body, w.Response.Body)
		gr, wr := *g.Response, *w.Response
		gr.Body, wr.Body = nil, nil
		g.Response, w.Response = &gr, &wr
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("binary %+v\n  JSON %+v\ninput %s", g, w, js)
	}
}

func sameRaw(t *testing.T, name string, got, want json.RawMessage) {
	t.Helper()
	if (len(got) == 0) != (len(want) == 0) {
		t.Fatalf("%s: got %q, want %q", name, got, want)
	}
	if len(got) == 0 {
		return
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s: got %s, want %s", name, got, want)
	}
}

// jsonCorpus is every JSON input the JSON decoder's tests use that encoding/json accepts: the table of
// TestDecodeInput, the fuzz seeds and corpus, and both plugins' golden vectors.
func jsonCorpus(t *testing.T) map[string][]byte {
	t.Helper()
	corpus := map[string][]byte{"full": []byte(fullInput), "empty": []byte(`{}`)}
	for _, s := range []string{`{"op":null,"merchant":null,"session":{"amount":null,"lines":null,"id":null},"operation":null,"response":null,"callback":null}`,
		`{"session":{"lines":[]}}`, `{"merchant":{"express":{"shipping":{"methods":null,"rules":[],"mode":null}}}}`,
		`{"merchant":{"express":{"shipping":{"methods":[{"default":false,"pickupPoint":null},{"default":true}]}}}}`,
		`{"response":{"status":null,"body":null}}`, "{\"op\":\"a\xffb\xc3\",\"session\":{\"description\":\"\xed\xa0\x80\"}}",
		`{"op":"\ud800\u0041\udc00x\ud83d"}`, `{"merchant":{"express":{"shipping":{"methods":[{"countries":["a"]}]}}}}`} {
		corpus[s] = []byte(s)
	}
	for _, pattern := range []string{"testdata/fuzz/FuzzDecodeInput/*", "../vippsecom/testdata/golden/*.input.json",
		"../vippsepayment/testdata/golden/*.input.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no files match %s", pattern)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(string(b), "go test fuzz v1\n") {
				s := strings.TrimSuffix(strings.TrimPrefix(string(b), "go test fuzz v1\n[]byte("), ")\n")
				var err error
				if s, err = unquoteGo(s); err != nil {
					continue
				}
				b = []byte(s)
			}
			corpus[f] = b
		}
	}
	return corpus
}

// unquoteGo reads a Go string literal as the fuzz corpus files write them.
func unquoteGo(s string) (string, error) {
	var out string
	err := json.Unmarshal([]byte(strings.ReplaceAll(s, `\x`, `\u00`)), &out)
	return out, err
}

func TestBinaryMatchesJSONOnCorpus(t *testing.T) {
	v1, v2 := &dispatcher{version: abi.VersionJSON}, &dispatcher{version: abi.VersionBinary}
	n := 0
	for name, data := range jsonCorpus(t) {
		in, err := stdDecode(data)
		if err != nil || in == nil {
			continue // the JSON decoder's tests hold what it refuses
		}
		t.Run(filepath.Base(name), func(t *testing.T) { sameAsJSON(t, v1, v2, in) })
		n++
	}
	if n < 250 {
		t.Fatalf("only %d corpus inputs compared", n)
	}
}

// TestBinaryMatchesJSONGenerated compares the two encodings on many generated inputs: every optional part
// present or absent, lists nil, empty or long, strings empty, escaped, non-ASCII or invalid UTF-8, integers
// at their limits.
func TestBinaryMatchesJSONGenerated(t *testing.T) {
	v1, v2 := &dispatcher{version: abi.VersionJSON}, &dispatcher{version: abi.VersionBinary}
	r := rand.New(rand.NewPCG(2, 12))
	for i := range 5000 {
		in := genInput(r)
		t.Run("", func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("generated input %d", i)
				}
			}()
			sameAsJSON(t, v1, v2, in)
		})
	}
}

var genStrings = []string{"", "a", "NOK", "https://shop.example/cb?o=1&x=<2>", "Ørn \"kaffe\" \\ é 😀 /", "\u2028\u2029",
	"a\xffb", "\xed\xa0\x80", "\xc3", "\x00\x01\x1f", strings.Repeat("x", 300)}

var genRaws = []string{`{}`, `null`, `"<html>"`, `[1,2.5e3,true,null]`, `{"a":[{}],"b":"c"}`,
	`{ "spaced" : [ 1 , 2 ] }`, `{"u":"\u00e9\ud83d\ude00"}`, `12`}

func genInput(r *rand.Rand) *abi.Input {
	str := func() string { return genStrings[r.IntN(len(genStrings))] }
	num := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return r.Int64() - r.Int64()
		case 2:
			return []int64{-1 << 63, 1<<63 - 1, -1}[r.IntN(3)]
		}
		return r.Int64N(1000000)
	}
	strs := func() []string {
		switch r.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		l := make([]string, 1+r.IntN(3))
		for i := range l {
			l[i] = str()
		}
		return l
	}
	raw := func() json.RawMessage {
		if r.IntN(3) == 0 {
			return nil
		}
		return json.RawMessage(genRaws[r.IntN(len(genRaws))])
	}
	in := &abi.Input{Op: abi.Op(str()), Callback: raw(),
		Merchant: abi.Merchant{ID: str(), MerchantSerialNumber: str(), CallbackPrefix: str(), FallBack: str(), TransactionTextPrefix: str()},
		Session: abi.Session{ID: str(), Reference: str(), ProviderReference: str(), State: str(), Amount: num(), Currency: str(),
			Description: str(), CustomerPhone: str(), AuthorizedAmount: num(), CapturedAmount: num(), RefundedAmount: num(),
			CancelledAmount: num(), UserFlow: str()}}
	if n := r.IntN(5) - 1; n >= 0 {
		in.Session.Lines = make([]abi.Line, n*n)
		for i := range in.Session.Lines {
			in.Session.Lines[i] = abi.Line{SKU: str(), Name: str(), Quantity: num(), UnitPrice: num()}
		}
	}
	if r.IntN(2) == 0 {
		e := &abi.Express{ShippingDetailsPrefix: str(), ConsentRemovalPrefix: str(), Shipping: abi.Shipping{Mode: str()}}
		if n := r.IntN(4) - 1; n >= 0 {
			e.Shipping.Methods = make([]abi.ShippingMethod, n)
			for i := range e.Shipping.Methods {
				e.Shipping.Methods[i] = abi.ShippingMethod{ID: str(), Name: str(), Cost: num(), Default: r.IntN(2) == 0,
					PickupPoint: r.IntN(2) == 0, Countries: strs(), PostCodePrefixes: strs()}
			}
		}
		if n := r.IntN(4) - 1; n >= 0 {
			e.Shipping.Rules = make([]abi.ShippingRule, n)
			for i := range e.Shipping.Rules {
				e.Shipping.Rules[i] = abi.ShippingRule{Methods: strs(), Countries: strs(), PostCodePrefixes: strs(), MinAmount: num(), Cost: num()}
			}
		}
		in.Merchant.Express = e
	}
	if r.IntN(2) == 0 {
		in.Operation = &abi.Operation{Amount: num(), Text: str()}
	}
	if r.IntN(2) == 0 {
		in.Response = &abi.Response{Status: []int{0, 200, 404, 503}[r.IntN(4)], Body: raw()}
	}
	return in
}

// TestDispatcherVersions checks that a module takes only its own version's encoding and says so, and that
// Run takes both.
func TestDispatcherVersions(t *testing.T) {
	in := &abi.Input{Op: "x"}
	bin := abi.AppendBinary(nil, in)
	js, _ := json.Marshal(in)
	h := func(in *abi.Input) *abi.Output { return &abi.Output{OK: in.Op == "x"} }
	tests := []struct {
		name    string
		version int
		input   []byte
		want    string
	}{
		{"v2 binary", abi.VersionBinary, bin, `{"ok":true}`},
		{"v2 JSON", abi.VersionBinary, js, `{"ok":false,"error":{"code":"invalid_input","message":"the input is not in ABI version 2's binary encoding (its first byte must be 0xb2)"}}`},
		{"v2 malformed", abi.VersionBinary, bin[:3], `{"ok":false,"error":{"code":"invalid_input","message":"abi: binary input: op: truncated at offset 1"}}`},
		{"v2 empty", abi.VersionBinary, nil, `{"ok":false,"error":{"code":"invalid_input","message":"the input is not in ABI version 2's binary encoding (its first byte must be 0xb2)"}}`},
		{"v1 JSON", abi.VersionJSON, js, `{"ok":true}`},
		{"v1 binary", abi.VersionJSON, bin, `{"ok":false,"error":{"code":"invalid_input","message":"the input is in ABI version 2's binary encoding; this module implements version 1 (JSON)"}}`},
		{"Run binary", 0, bin, `{"ok":true}`},
		{"Run JSON", 0, js, `{"ok":true}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := dispatcher{handler: h, version: tc.version}
			copy(d.input(len(tc.input)), tc.input)
			if got := string(d.call(len(tc.input))); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	if moduleVersion != abi.Version {
		t.Fatalf("modules built without tags report version %d, want %d", moduleVersion, abi.Version)
	}
}

func TestDispatchBinaryAllocations(t *testing.T) {
	in, err := stdDecode([]byte(fullInput))
	if err != nil {
		t.Fatal(err)
	}
	bin := abi.AppendBinary(nil, in)
	d := dispatcher{version: abi.VersionBinary}
	if _, err := d.decode(bin); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := d.decode(bin); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per decode, want 0", n)
	}
}

// BenchmarkDecodeInput compares the two input decoders natively on the same input (fullInput: every field,
// escapes, raw members): version 1's JSON decoder and version 2's binary one.
func BenchmarkDecodeInput(b *testing.B) {
	in, err := stdDecode([]byte(fullInput))
	if err != nil {
		b.Fatal(err)
	}
	js, err := json.Marshal(in)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		version int
		data    []byte
	}{{"json", abi.VersionJSON, js}, {"binary", abi.VersionBinary, abi.AppendBinary(nil, in)}} {
		b.Run(tc.name, func(b *testing.B) {
			d := dispatcher{version: tc.version}
			b.SetBytes(int64(len(tc.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.decode(tc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package checkout

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
	"github.com/kassehq/kasse/schemas"
)

// goldenOutputs returns every golden output of both shipped plugins, compact.
func goldenOutputs(t testing.TB) [][]byte {
	t.Helper()
	root := plugintest.ModuleRoot(t)
	var outs [][]byte
	for _, dir := range []string{"plugin/vippsecom/testdata/golden", "plugin/vippsepayment/testdata/golden"} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.output.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no golden outputs in %s: %v", dir, err)
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, raw); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			outs = append(outs, buf.Bytes())
		}
	}
	return outs
}

// replacements are values a mutation puts in place of a member: wrong types, bounds and their neighbours,
// strings that break the schema's patterns, formats and enums.
var replacements = []any{
	nil, true, false, "", "x", json.Number("0"), json.Number("-1"), json.Number("-2"), json.Number("1.5"),
	json.Number("1.0"), json.Number("1e2"), json.Number("99"), json.Number("100"), json.Number("199"),
	json.Number("200"), json.Number("599"), json.Number("600"), json.Number("65000000"), json.Number("65000001"),
	json.Number("9223372036854775808"), []any{}, map[string]any{},
	strings.Repeat("a", 21), strings.Repeat("ø", 100), strings.Repeat("ø", 101), strings.Repeat("a", 201),
	strings.Repeat("a", 1000), strings.Repeat("a", 1001), "/" + strings.Repeat("a", 1024),
	"https://" + strings.Repeat("a", 4090), "GET", "get", "POST", "PUT", "DELETE", "PATCH",
	"X-Request-Id", "Idempotency-Key", "x-request-id", "callbackToken", "callbacktoken",
	"/", "//evil.example", "/a/../b", "/a/./b", "/a//b", "/a.b/c?x=1", "/a?x=%20", "/a#f", "https://evil.example/a",
	"/merchantInfo/authToken", "/a~2", "/a~", "", "merchantInfo",
	"https://landing.vipps.no/x", "http://127.0.0.1:8090/x", "vipps://x", "vippsMT://x", "vipps://x y",
	"javascript:alert(1)", "https://user@host/", "http://[::1]/x", "http://[1.2.3.4]/x", "http://::1/x",
	"https://exa mple.com", "HTTPS://x.example", "provider_error", "Provider_Error", "a" + strings.Repeat("b", 64),
	"pending", "authorized", "captured", "refunded", "cancelled", "rejected", "expired", "failed", "Pending",
	[]any{map[string]any{"pointer": "/a", "value": "callbackToken"}},
	[]any{map[string]any{"pointer": "/a", "value": "callbackToken"}, map[string]any{"pointer": "/a", "value": "callbackToken"}},
	[]any{map[string]any{"pointer": "/a"}}, []any{"x"},
	map[string]any{"code": "x", "message": "y"}, map[string]any{"method": "GET", "path": "/a"},
	map[string]any{"state": "pending", "authorizedAmount": json.Number("-1"), "capturedAmount": json.Number("-1"),
		"refundedAmount": json.Number("-1"), "cancelledAmount": json.Number("-1")},
	map[string]any{"status": json.Number("200")},
}

// paths lists the pointers (as key lists) of every member and array item in v.
func paths(v any, prefix []any, out *[][]any) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := append(slices.Clone(prefix), k)
			*out = append(*out, p)
			paths(v[k], p, out)
		}
	case []any:
		for i, item := range v {
			p := append(slices.Clone(prefix), i)
			*out = append(*out, p)
			paths(item, p, out)
		}
	}
}

func decodeTree(t *testing.T, raw []byte) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// mutate changes the member or item at path in v (a fresh tree): kind 0 deletes it, 1 replaces it with r,
// 2 adds a sibling member named r (objects only), 3 changes the case of its key.
func mutate(v any, path []any, kind int, r any) bool {
	parent := v
	for _, k := range path[:len(path)-1] {
		switch p := parent.(type) {
		case map[string]any:
			parent = p[k.(string)]
		case []any:
			parent = p[k.(int)]
		}
	}
	last := path[len(path)-1]
	switch p := parent.(type) {
	case map[string]any:
		k := last.(string)
		switch kind {
		case 0:
			delete(p, k)
		case 1:
			p[k] = r
		case 2:
			name, ok := r.(string)
			if !ok || name == "" {
				return false
			}
			p[name] = "x"
		case 3:
			val := p[k]
			delete(p, k)
			p[strings.ToUpper(k[:1])+k[1:]] = val
		}
		return true
	case []any:
		if kind != 1 {
			return false
		}
		p[last.(int)] = r
		return true
	}
	return false
}

// TestOutputCheckAgreesWithSchema holds decodeOutput to plugin-output.schema.json: on every golden output of
// both plugins, and on mutations of each (every member deleted, replaced by each of many values, joined by
// an unknown sibling, its key's case changed), decodeOutput refuses exactly what the schema refuses, except
// where the schema accepts a document that cannot be decoded into abi.Output anyway (e.g. 1.0 as an
// integer), which the old path refused in its decoding step.
func TestOutputCheckAgreesWithSchema(t *testing.T) {
	set, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	docs := outputDocs(t)
	var accepted, refused int
	for _, doc := range docs {
		schemaErr := set.Validate(schemas.PluginOutput, doc)
		_, fastErr := decodeOutput(doc)
		switch {
		case schemaErr == nil && fastErr == nil:
			accepted++
		case schemaErr != nil && fastErr != nil:
			refused++
		case schemaErr != nil:
			t.Errorf("the schema refuses, decodeOutput accepts:\n%s\nschema: %v", doc, schemaErr)
		default:
			var out abi.Output
			if json.Unmarshal(doc, &out) == nil {
				t.Errorf("decodeOutput refuses, the schema accepts:\n%s\ndecodeOutput: %v", doc, fastErr)
			}
		}
	}
	t.Logf("%d documents: %d accepted by both, %d refused by both", len(docs), accepted, refused)
	if accepted < 100 || refused < 1000 {
		t.Errorf("too few cases on one side: %d accepted, %d refused", accepted, refused)
	}
}

// outputDocs are the documents the output check is tried on: every golden output of both plugins, and
// mutations of each (members removed, replaced by values of other types and edge cases, and renamed), and
// a few broken documents.
func outputDocs(t *testing.T) [][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(12, 2026))
	var docs [][]byte
	for _, raw := range goldenOutputs(t) {
		docs = append(docs, raw)
		var ps [][]any
		paths(decodeTree(t, raw), nil, &ps)
		for _, p := range ps {
			for kind := range 4 {
				rs := []any{nil}
				if kind == 1 {
					rs = replacements
				}
				if kind == 2 {
					rs = []any{"unknown", "ok", "error", "request", "payment", "reply", "body"}
				}
				for _, r := range rs {
					if kind == 1 && rng.IntN(3) != 0 { // a third of the replacements per member keeps the run short
						continue
					}
					tree := decodeTree(t, raw)
					if !mutate(tree, p, kind, r) {
						continue
					}
					doc, err := json.Marshal(tree)
					if err != nil {
						t.Fatal(err)
					}
					docs = append(docs, doc)
				}
			}
		}
	}
	docs = append(docs, []byte(`{"ok":true,"request":{"method":"GET","path":"/a"}} x`), []byte(``), []byte(`[]`), []byte(`null`),
		[]byte(`{"ok":true,"ok":false,"error":{"code":"x","message":"y"}}`))
	return docs
}

// TestFastOutputMatchesGeneralPath holds fastDecodeOutput to decodeOutputGeneral on the documents of
// TestOutputCheckAgreesWithSchema and on outputs of odd but valid shapes: whatever the fast reader accepts,
// the general path accepts with the same value, and it accepts the golden outputs of the request path.
func TestFastOutputMatchesGeneralPath(t *testing.T) {
	docs := append(outputDocs(t),
		[]byte(` {"ok" : true , "request":{"method":"POST","path":"/a","body": {"x" : [1, "\u00e9"]} ,
			"inject":[{"pointer":"/x","value":"callbackToken"}]}} `),
		[]byte(`{"ok":true,"request":{"method":"POST","path":"/a","body":{},"inject":[{"pointer":"/x","value":"callbackToken"},{"pointer":"/x","value":"callbackToken"}]}}`),
		[]byte(`{"ok":true,"payment":{"state":"authorized","authorizedAmount":-0,"capturedAmount":0,"refundedAmount":0,"cancelledAmount":0,"reason":"bad \xff \ud800 utf-8","contact":{},"shipping":{"address":{}}}}`),
		[]byte("{\"ok\":true,\"payment\":{\"state\":\"authorized\",\"authorizedAmount\":1,\"capturedAmount\":0,\"refundedAmount\":0,\"cancelledAmount\":0,\"reason\":\"raw \xff byte\"}}"),
		[]byte(`{"ok":true,"payment":{"state":"authorized","authorizedAmount":1.0,"capturedAmount":0,"refundedAmount":0,"cancelledAmount":0}}`),
		[]byte(`{"ok":true,"payment":{"state":"authorized","authorizedAmount":1,"capturedAmount":0,"refundedAmount":0,"cancelledAmount":0,"authorizedAmount":2}}`),
		[]byte(`{"ok":true,"payment":{"State":"authorized","authorizedAmount":1,"capturedAmount":0,"refundedAmount":0,"cancelledAmount":0}}`),
		[]byte(`{"ok":true,"reply":{"status":200,"body":{"a":1}}}`),
		[]byte(`{"ok":true,"reply":{"status":200,"body":null}}`),
		[]byte(`{"ok":false,"error":{"code":"provider_error","message":"m","providerStatus":409,"retryable":true}}`),
		[]byte(`{"ok":false,"error":{"code":"provider_error","message":"m","providerErrors":[{"code":"x"}]}}`),
		[]byte(`{"o\u006b":true,"request":{"method":"GET","path":"/a"}}`),
	)
	fast, agreed := 0, 0
	for _, doc := range docs {
		got, ok := fastDecodeOutput(doc)
		want, err := decodeOutputGeneral(doc)
		if !ok {
			continue
		}
		fast++
		if err != nil {
			t.Errorf("the fast reader accepts, the general path refuses:\n%s\n%v", doc, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("the fast reader reads\n%+v\nthe general path\n%+v\nfrom %s", got, want, doc)
			continue
		}
		agreed++
	}
	for _, raw := range goldenOutputs(t) {
		if !bytes.Contains(raw, []byte(`"ok":true`)) || bytes.Contains(raw, []byte(`"ledgers"`)) || bytes.Contains(raw, []byte(`"report"`)) {
			continue
		}
		if _, ok := fastDecodeOutput(raw); !ok {
			t.Errorf("the fast reader leaves a golden output of the request path to the general path:\n%s", raw)
		}
	}
	t.Logf("%d documents: the fast reader took %d, all read as the general path reads them: %v", len(docs), fast, agreed == fast)
	if fast < 100 {
		t.Errorf("the fast reader took only %d documents", fast)
	}
}

// BenchmarkOutputCheck compares the output check on a read_callback golden output: the JSON Schema
// validator plus json.Unmarshal (before) and decodeOutput (now).
func BenchmarkOutputCheck(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(plugintest.ModuleRoot(b), "plugin/vippsecom/testdata/golden/read_callback-reserve-express.output.json"))
	if err != nil {
		b.Fatal(err)
	}
	set, err := schemas.Compile()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("schema", func(b *testing.B) {
		for b.Loop() {
			var out abi.Output
			if set.Validate(schemas.PluginOutput, raw) != nil || json.Unmarshal(raw, &out) != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("decodeOutput", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeOutput(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzFastOutput: whatever fastDecodeOutput accepts, decodeOutputGeneral accepts with the same value.
func FuzzFastOutput(f *testing.F) {
	for _, raw := range goldenOutputs(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, ok := fastDecodeOutput(doc)
		if !ok {
			return
		}
		want, err := decodeOutputGeneral(doc)
		if err != nil {
			t.Fatalf("the fast reader accepts, the general path refuses: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("the fast reader reads\n%+v\nthe general path\n%+v", got, want)
		}
	})
}

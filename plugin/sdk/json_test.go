package sdk

import (
	"encoding/json"
	"testing"
)

func TestJSON(t *testing.T) {
	type amount struct {
		Value    int64  `json:"value"`
		Currency string `json:"currency"`
	}
	type body struct {
		Amount    amount          `json:"amount"`
		Reference string          `json:"reference"`
		Text      string          `json:"paymentDescription"`
		UserFlow  string          `json:"userFlow"`
		Express   bool            `json:"express"`
		Tags      []string        `json:"tags"`
		Numbers   []int64         `json:"numbers"`
		Flags     []bool          `json:"flags"`
		Raw       json.RawMessage `json:"raw"`
		Nothing   *int            `json:"nothing"`
		Empty     struct{}        `json:"empty"`
		Nested    [][]any         `json:"nested"`
		Objects   []amount        `json:"objects"`
	}
	want, err := json.Marshal(body{
		Amount:    amount{Value: 1000, Currency: "NOK"},
		Reference: "order-1",
		Text:      "Kaffe & kake <3> \u2028 \"sitat\" \\",
		UserFlow:  "WEB_REDIRECT",
		Express:   true,
		Tags:      []string{"a", "b"},
		Numbers:   []int64{-1, 0, 1},
		Flags:     []bool{false},
		Raw:       json.RawMessage(`{"x":[1]}`),
		Empty:     struct{}{},
		Nested:    [][]any{{}, {}},
		Objects:   []amount{{1, "A"}, {2, "B"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var w JSON
	for range 2 { // the second round checks that Reset keeps nothing
		w.Reset().Obj().
			ObjField("amount").Int("value", 1000).Str("currency", "NOK").End().
			Str("reference", "order-1").
			Str("paymentDescription", "Kaffe & kake <3> \u2028 \"sitat\" \\").
			Str("userFlow", "WEB_REDIRECT").
			Bool("express", true).
			ArrField("tags").StrElem("a").StrElem("b").End().
			ArrField("numbers").IntElem(-1).IntElem(0).IntElem(1).End().
			ArrField("flags").BoolElem(false).End().
			Raw("raw", []byte(`{"x":[1]}`)).
			Null("nothing").
			ObjField("empty").End().
			ArrField("nested").Arr().End().Arr().End().End().
			ArrField("objects").
			Obj().Int("value", 1).Str("currency", "A").End().
			Obj().Int("value", 2).Str("currency", "B").End().
			End().
			End()
		if got := string(w.Bytes()); got != string(want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
	if w.Len() != len(want) {
		t.Fatalf("Len %d, want %d", w.Len(), len(want))
	}
	if got := string(new(JSON).Arr().RawElem(nil).End().End().Bytes()); got != "[null]" {
		t.Fatalf("got %s", got)
	}
}

func TestJSONAllocations(t *testing.T) {
	var w JSON
	build := func() {
		w.Reset().Obj().ObjField("amount").Int("value", 1000).Str("currency", "NOK").End().Str("reference", "order-1").End()
	}
	build()
	if n := testing.AllocsPerRun(100, build); n != 0 {
		t.Fatalf("%v allocations, want 0", n)
	}
}

// TestJSONDeepNesting crosses the depth at which the writer keeps its levels in a slice rather than in
// bits, with objects and arrays alternating, members after a deep level closes, and a Reset in between.
func TestJSONDeepNesting(t *testing.T) {
	for _, depth := range []int{1, 63, 64, 65, 130} {
		var v any = []any{}
		for i := depth - 1; i >= 0; i-- {
			if i%2 == 0 {
				v = map[string]any{"a": v, "b": int64(i)}
			} else {
				v = []any{v, int64(i)}
			}
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var w JSON
		w.Obj().Str("junk", "x").End()
		w.Reset()
		var write func(i int, key string)
		write = func(i int, key string) {
			switch {
			case i == depth && key != "":
				w.ArrField(key).End()
			case i == depth:
				w.Arr().End()
			case i%2 == 0:
				if key != "" {
					w.ObjField(key)
				} else {
					w.Obj()
				}
				write(i+1, "a")
				w.Int("b", int64(i)).End()
			default:
				if key != "" {
					w.ArrField(key)
				} else {
					w.Arr()
				}
				write(i+1, "")
				w.IntElem(int64(i)).End()
			}
		}
		write(0, "")
		if got := string(w.Bytes()); got != string(want) {
			t.Fatalf("depth %d:\n got %s\nwant %s", depth, got, want)
		}
	}
}

// TestJSONFirstUseAllocations: a fresh writer for a small body costs one allocation, its buffer.
func TestJSONFirstUseAllocations(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		var w JSON
		w.Obj().ObjField("merchantInfo").Str("merchantSerialNumber", "123456").End().
			ObjField("transaction").Int("amount", 1000).Str("transactionText", "Order 1 shipped").End().End()
		if w.Len() == 0 {
			t.Fatal("empty")
		}
	})
	if n > 1 {
		t.Fatalf("%v allocations, want at most 1", n)
	}
}

// TestScannerNumberString: a number reads as written, and a non-number is refused as Number refuses it.
func TestScannerNumberString(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{{`-12.5e3`, `-12.5e3`}, {` 0 `, `0`}, {`"1"`, ``}, {``, ``}} {
		var s Scanner
		s.Reset([]byte(tc.doc))
		got, err := s.NumberString()
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("NumberString(%q) = %q, %v; want %q", tc.doc, got, err, tc.want)
		}
	}
}

// TestJSONGrow: Grow keeps what was written and makes the room it was asked for.
func TestJSONGrow(t *testing.T) {
	var w JSON
	w.Obj().Str("a", "b")
	w.Grow(1000)
	if cap(w.Bytes())-w.Len() < 1000 {
		t.Fatalf("room %d, want 1000", cap(w.Bytes())-w.Len())
	}
	if got := string(w.End().Bytes()); got != `{"a":"b"}` {
		t.Fatalf("got %s", got)
	}
}

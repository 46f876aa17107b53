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

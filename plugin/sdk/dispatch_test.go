package sdk

import (
	"errors"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
)

func TestDispatcher(t *testing.T) {
	okOut := &abi.Output{OK: true}
	tests := []struct {
		name    string
		handler HandlerFunc
		input   string
		want    string
	}{
		{"ok", func(*abi.Input) *abi.Output { return okOut }, `{"op":"x"}`, `{"ok":true}`},
		{"no handler", nil, `{}`, `{"ok":false,"error":{"code":"plugin_no_handler","message":"the plugin did not call sdk.Handle"}}`},
		{"nil output", func(*abi.Input) *abi.Output { return nil }, `{}`, `{"ok":false,"error":{"code":"plugin_nil_output","message":"the handler returned no output"}}`},
		{"panic string", func(*abi.Input) *abi.Output { panic("boom") }, `{}`, `{"ok":false,"error":{"code":"plugin_panic","message":"panic: boom"}}`},
		{"panic error", func(*abi.Input) *abi.Output { panic(errors.New("bad")) }, `{}`, `{"ok":false,"error":{"code":"plugin_panic","message":"panic: bad"}}`},
		{"panic value", func(in *abi.Input) *abi.Output { return &abi.Output{OK: in.Session.Lines[3].Quantity > 0} }, `{}`,
			`{"ok":false,"error":{"code":"plugin_panic","message":"panic: runtime error: index out of range [3] with length 0"}}`},
		{"invalid input", func(*abi.Input) *abi.Output { return okOut }, `{"op":1}`,
			`{"ok":false,"error":{"code":"invalid_input","message":"cannot unmarshal value into field op"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Run(tc.handler, []byte(tc.input))); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestDispatcherBuffers checks the buffer contract the host relies on: the input buffer only changes when
// a larger one is asked for, and a size beyond it is refused.
func TestDispatcherBuffers(t *testing.T) {
	d := dispatcher{handler: func(in *abi.Input) *abi.Output { return &abi.Output{OK: in.Op == "x"} }}
	b1 := d.input(16)
	if len(b1) < 16 {
		t.Fatalf("buffer of %d bytes", len(b1))
	}
	if b2 := d.input(8); &b2[0] != &b1[0] {
		t.Fatal("a smaller input moved the buffer")
	}
	n := copy(b1, `{"op":"x"}`)
	if got := string(d.call(n)); got != `{"ok":true}` {
		t.Fatalf("got %s", got)
	}
	if got := string(d.call(len(b1) + 1)); got != `{"ok":false,"error":{"code":"invalid_input","message":"input size out of range of the input buffer"}}` {
		t.Fatalf("got %s", got)
	}
	if got := string(d.call(-1)); got != `{"ok":false,"error":{"code":"invalid_input","message":"input size out of range of the input buffer"}}` {
		t.Fatalf("got %s", got)
	}
	if b3 := d.input(1 << 20); len(b3) < 1<<20 {
		t.Fatalf("buffer of %d bytes", len(b3))
	}
}

func BenchmarkDispatch(b *testing.B) {
	var (
		out  abi.Output
		req  abi.Request
		body JSON
	)
	d := dispatcher{handler: func(in *abi.Input) *abi.Output {
		body.Reset().Obj().ObjField("amount").Int("value", in.Session.Amount).Str("currency", in.Session.Currency).End().
			Str("reference", in.Session.Reference).Str("paymentDescription", in.Session.Description).End()
		req = abi.Request{Method: "POST", Path: "/epayment/v1/payments", Body: body.Bytes()}
		out = abi.Output{OK: true, Request: &req}
		return &out
	}}
	n := copy(d.input(len(fullInput)), fullInput)
	b.ReportAllocs()
	for b.Loop() {
		d.call(n)
	}
}

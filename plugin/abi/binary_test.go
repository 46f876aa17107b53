package abi

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// sample is an input with every part present.
func sample() *Input {
	return &Input{
		Op: OpShippingOptions,
		Merchant: Merchant{ID: "m1", MerchantSerialNumber: "123456", CallbackPrefix: "https://k/cb", FallBack: "https://k/r",
			TransactionTextPrefix: "Shop: ", Express: &Express{ShippingDetailsPrefix: "https://k/s", ConsentRemovalPrefix: "https://k/c",
				Shipping: Shipping{Mode: ShippingDynamic,
					Methods: []ShippingMethod{{ID: "posten", Name: "Posten", Cost: 4900, Default: true, Countries: []string{"NO", "SE"}},
						{ID: "hent", Name: "Hent", PickupPoint: true, PostCodePrefixes: []string{"0", "1"}}},
					Rules: []ShippingRule{{Methods: []string{"posten"}, Countries: []string{"NO"}, MinAmount: 100000}, {Cost: 1}}}}},
		Session: Session{ID: "s1", Reference: "o-1", ProviderReference: "p-1", State: "pending", Amount: 12345, Currency: "NOK",
			Description: "Ørn \"kaffe\" 😀", CustomerPhone: "4712345678", AuthorizedAmount: -1, CapturedAmount: 0,
			RefundedAmount: 9223372036854775807, CancelledAmount: -9223372036854775808, UserFlow: "QR",
			Lines: []Line{{SKU: "a-1", Name: "Kaffe", Quantity: 2, UnitPrice: 5000}, {Name: "Te", Quantity: 1, UnitPrice: 2345}}},
		Operation: &Operation{Amount: 100, Text: "part"},
		Response:  &Response{Status: 201, Body: json.RawMessage(`{"a": [1, 2]}`)},
		Callback:  json.RawMessage(`{"address":{"postCode":"0150"}}`),
	}
}

// viaJSON is what a version 1 guest decodes from in: in through json.Marshal and json.Unmarshal, with the
// raw members as AppendBinary carries them (as they are, where JSON compacts them).
func viaJSON(t testing.TB, in *Input) *Input {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Input
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	out.Callback = in.Callback
	if len(out.Callback) == 0 {
		out.Callback = nil
	}
	if out.Response != nil {
		out.Response.Body = in.Response.Body
		if len(out.Response.Body) == 0 {
			out.Response.Body = nil
		}
	}
	return &out
}

func TestBinaryRoundTrip(t *testing.T) {
	full := sample()
	tests := []struct {
		name string
		in   *Input
	}{
		{"full", full},
		{"zero", &Input{}},
		{"empty lists", &Input{Merchant: Merchant{Express: &Express{Shipping: Shipping{Methods: []ShippingMethod{}, Rules: []ShippingRule{}}}},
			Session: Session{Lines: []Line{}}}},
		{"nil methods", &Input{Merchant: Merchant{Express: &Express{Shipping: Shipping{Mode: "static"}}}}},
		{"empty string lists", &Input{Merchant: Merchant{Express: &Express{Shipping: Shipping{
			Methods: []ShippingMethod{{ID: "x", Countries: []string{}, PostCodePrefixes: []string{""}}},
			Rules:   []ShippingRule{{Methods: []string{}, Countries: []string{"", "NO"}}}}}}}},
		{"invalid utf8", &Input{Op: "a\xffb", Session: Session{Description: "\xed\xa0\x80x\xc3", Lines: []Line{{Name: "\x80"}}}}},
		{"operation only", &Input{Op: OpBuildCapture, Operation: &Operation{}}},
		{"response without body", &Input{Op: OpReadCapture, Response: &Response{Status: 500}}},
		{"callback null", &Input{Op: OpReadCallback, Callback: json.RawMessage("null")}},
		{"long", &Input{Session: Session{Description: strings.Repeat("é€", 5000), Lines: make([]Line, 300)}}},
	}
	var d Decoder
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := AppendBinary(nil, tc.in)
			if !IsBinary(enc) {
				t.Fatalf("encoding starts with %#x", enc[0])
			}
			got, err := d.Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			if want := viaJSON(t, tc.in); !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
			// Appending to a buffer with content leaves the content and encodes the same bytes.
			again := AppendBinary([]byte("prefix"), tc.in)
			if !bytes.Equal(again[6:], enc) || string(again[:6]) != "prefix" {
				t.Fatal("AppendBinary does not append")
			}
		})
	}
}

// TestBinaryLayout pins the layout ABI.md documents, byte for byte, for a small input.
func TestBinaryLayout(t *testing.T) {
	in := &Input{Op: "x", Session: Session{Amount: 258, Lines: []Line{{Name: "n", Quantity: 1}}},
		Response: &Response{Status: 200, Body: json.RawMessage("{}")}}
	var want []byte
	u32 := func(v uint32) { want = binary.LittleEndian.AppendUint32(want, v) }
	i64 := func(v int64) { want = binary.LittleEndian.AppendUint64(want, uint64(v)) }
	str := func(s string) { u32(uint32(len(s))); want = append(want, s...) }
	want = append(want, 0xB2)
	str("x")
	for range 5 { // merchant strings
		str("")
	}
	want = append(want, 0) // no express
	for range 4 {          // session id, reference, providerReference, state
		str("")
	}
	i64(258)
	str("")
	str("")
	str("")
	i64(0)
	i64(0)
	i64(0)
	i64(0)
	u32(1) // lines
	str("")
	str("n")
	i64(1)
	i64(0)
	str("")                // userFlow
	want = append(want, 0) // no operation
	want = append(want, 1) // response
	i64(200)
	str("{}")
	u32(0) // no callback
	if got := AppendBinary(nil, in); !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
}

func TestBinaryDecodeErrors(t *testing.T) {
	full := AppendBinary(nil, sample())
	// offsetOf finds where a field's bytes start in full, so the cases below stay right if sample changes.
	offsetOf := func(marker string) int {
		i := bytes.Index(full, []byte(marker))
		if i < 4 {
			t.Fatalf("%q not in the sample", marker)
		}
		return i - 4
	}
	with := func(at int, b ...byte) []byte {
		out := bytes.Clone(full)
		copy(out[at:], b)
		return out
	}
	express := offsetOf("https://k/s") - 1
	lines := offsetOf("a-1") - 4
	tests := []struct {
		name, want string
		input      []byte
	}{
		{"empty", "abi: binary input is empty", nil},
		{"json", "does not start with the binary magic byte", []byte(`{"op":"x"}`)},
		{"magic only", "abi: binary input: op: truncated at offset 1", []byte{0xB2}},
		{"op too long", "abi: binary input: op: length 4294967295 exceeds the 0 bytes left at offset 1", []byte{0xB2, 0xff, 0xff, 0xff, 0xff}},
		{"truncated in a line", "session.lines[].unitPrice: truncated", full[:offsetOf("Te")+4+2+8]},
		{"bad presence byte", "merchant.express: byte 2 is neither 0 nor 1", with(express, 2)},
		{"huge line count", "session.lines: count 268435456 exceeds what the", with(lines, 0, 0, 0, 0x10)},
		{"nil-count is not a huge count", "", with(lines, 0xff, 0xff, 0xff, 0xff)},
		{"every prefix", "", nil},
	}
	var d Decoder
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "every prefix" {
				// Every strict prefix of a valid input is malformed: the callback's length is its last field.
				for n := range len(full) {
					if _, err := d.Decode(full[:n]); err == nil {
						t.Fatalf("a prefix of %d bytes decodes", n)
					}
				}
				return
			}
			got, err := d.Decode(tc.input)
			if tc.want == "" {
				// The lines are absent; what follows is then read from the lines' bytes and fails or not,
				// but never panics. Only the outcome for lines is checked.
				if err == nil && got.Session.Lines != nil {
					t.Fatal("an absent list decoded as present")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBinaryDecodeReuse(t *testing.T) {
	inputs := []*Input{sample(), {Op: "x"}, {Session: Session{Lines: []Line{{Name: "a"}}}}, sample(), {}}
	var d Decoder
	for i, in := range inputs {
		got, err := d.Decode(AppendBinary(nil, in))
		if err != nil {
			t.Fatal(err)
		}
		if want := viaJSON(t, in); !reflect.DeepEqual(got, want) {
			t.Fatalf("input %d: got %+v\nwant %+v", i, got, want)
		}
	}
}

func TestBinaryAllocations(t *testing.T) {
	var d Decoder
	data := AppendBinary(nil, sample())
	if _, err := d.Decode(data); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := d.Decode(data); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per decode, want 0", n)
	}
	in, buf := sample(), make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = AppendBinary(buf[:0], in) }); n != 0 {
		t.Fatalf("%v allocations per encode into a large enough buffer, want 0", n)
	}
}

// FuzzDecodeBinary feeds the decoder arbitrary bytes: it must never panic (a read outside the input would),
// a failure must be an error naming the field, and whatever decodes must encode and decode to the same
// input again (after the encoder's normalisation, which a second round leaves alone).
func FuzzDecodeBinary(f *testing.F) {
	f.Add(AppendBinary(nil, sample()))
	f.Add(AppendBinary(nil, &Input{}))
	f.Add(AppendBinary(nil, &Input{Merchant: Merchant{Express: &Express{}}, Operation: &Operation{}}))
	f.Add([]byte{0xB2})
	f.Add([]byte(`{"op":"x"}`))
	var d, d2 Decoder
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := d.Decode(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "abi: ") {
				t.Fatalf("error %q does not say where it comes from", err)
			}
			return
		}
		once := AppendBinary(nil, in)
		in2, err := d2.Decode(once)
		if err != nil {
			t.Fatalf("re-encoded input does not decode: %v", err)
		}
		if twice := AppendBinary(nil, in2); !bytes.Equal(once, twice) {
			t.Fatalf("encoding is not stable:\n%x\n%x", once, twice)
		}
	})
}

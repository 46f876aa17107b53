package adapters_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/kassehq/kasse/adapters"
)

func TestParseAmount(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  string
	}{
		{"29.35", 2935, ""}, {"0.9", 90, ""}, {"12", 1200, ""}, {"0", 0, ""}, {"0.00", 0, ""},
		{"007.10", 710, ""}, {"92233720368547758.07", math.MaxInt64, ""},
		{"92233720368547758.08", 0, `amount "92233720368547758.08" is too large`},
		{"1000000000000000000000", 0, `amount "1000000000000000000000" is too large`},
		{"29.355", 0, `amount "29.355" has more than 2 decimals`},
		{"-1.00", 0, `amount "-1.00" is negative`},
		{"", 0, "empty amount"},
		{"1e3", 0, `amount "1e3" is not a decimal number`},
		{"+1", 0, `amount "+1" is not a decimal number`},
		{".5", 0, `amount ".5" is not a decimal number`},
		{"5.", 0, `amount "5." is not a decimal number`},
		{"1,5", 0, `amount "1,5" is not a decimal number`},
		{" 1", 0, `amount " 1" is not a decimal number`},
		{"1.2.3", 0, `amount "1.2.3" has more than 2 decimals`},
		{"١٢", 0, `amount "١٢" is not a decimal number`},
	} {
		got, err := adapters.ParseAmount(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseAmount(%q) error = %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	if n, neg, err := adapters.ParseSignedAmount("-5.00"); n != 500 || !neg || err != nil {
		t.Errorf("ParseSignedAmount(-5.00) = %d %v %v", n, neg, err)
	}
	for minor, want := range map[int64]string{2935: "29.35", 5: "0.05", 0: "0.00", -150: "-1.50",
		math.MinInt64: "-92233720368547758.08"} {
		if got := adapters.FormatAmount(minor); got != want {
			t.Errorf("FormatAmount(%d) = %q, want %q", minor, got, want)
		}
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"29.35", "0.9", "12", "-1", "1e3", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := adapters.ParseAmount(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("%q gave %d", s, n)
		}
		// Round trip: the canonical form parses to the same value.
		if back, err := adapters.ParseAmount(adapters.FormatAmount(n)); err != nil || back != n {
			t.Fatalf("%q: %d -> %q -> %d, %v", s, n, adapters.FormatAmount(n), back, err)
		}
	})
}

type stub struct{ validate error }

func (stub) Verify(*adapters.Delivery) error                   { return nil }
func (stub) Parse(*adapters.Delivery) (*adapters.Event, error) { return &adapters.Event{}, nil }
func (stub) Render(adapters.Merchant, adapters.StatusUpdate) ([]adapters.Request, error) {
	return nil, nil
}
func (s stub) Validate(adapters.Merchant) error { return s.validate }

func TestRegister(t *testing.T) {
	adapters.Register(adapters.Info{ID: "test.stub", New: func() adapters.Adapter { return stub{} }})
	found := false
	for _, info := range adapters.Registered() {
		found = found || info.ID == "test.stub"
	}
	if !found {
		t.Error("registered adapter not listed")
	}
	for _, tt := range []struct {
		info adapters.Info
		want string
	}{
		{adapters.Info{ID: "test.stub", New: func() adapters.Adapter { return stub{} }}, "adapters: register: adapter test.stub already registered"},
		{adapters.Info{ID: "", New: func() adapters.Adapter { return stub{} }}, `adapters: register: invalid adapter id ""`},
		{adapters.Info{ID: "Bad ID", New: func() adapters.Adapter { return stub{} }}, `adapters: register: invalid adapter id "Bad ID"`},
		{adapters.Info{ID: "test.nil"}, "adapters: register test.nil: New is nil"},
	} {
		func() {
			defer func() {
				if got := fmt.Sprint(recover()); got != tt.want {
					t.Errorf("panic %q, want %q", got, tt.want)
				}
			}()
			adapters.Register(tt.info)
		}()
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{" a\tb\n\nc ": "a b c", "x\u200by": "x y", strings.Repeat("é", 120): strings.Repeat("é", 100)} {
		if got := adapters.Text(in, 100); got != want {
			t.Errorf("Text(%q) = %q", in, got)
		}
	}
	for in, want := range map[string]string{"+47 912 34 567": "91234567", "004791234567": "91234567", "91234567": "91234567",
		"(555) 555-5555": "", "12345678": "", "+4791234567": "91234567", "+46 912 34 567": ""} {
		if got := adapters.NorwegianMobile(in); got != want {
			t.Errorf("NorwegianMobile(%q) = %q, want %q", in, got, want)
		}
	}
}

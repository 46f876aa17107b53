package demoshop_test

import (
	"errors"
	"math"
	"testing"

	"github.com/kassehq/kasse/examples/demoshop"
)

func TestFormatKroner(t *testing.T) {
	for _, tc := range []struct {
		ore  int64
		want string
	}{
		{0, "0,00 kr"},
		{5, "0,05 kr"},
		{50, "0,50 kr"},
		{100, "1,00 kr"},
		{29950, "299,50 kr"},
		{49900, "499,00 kr"},
		{65_000_000, "650000,00 kr"},
		{-150, "-1,50 kr"},
		{-5, "-0,05 kr"},
		{math.MaxInt64, "92233720368547758,07 kr"},
		{math.MinInt64, "-92233720368547758,08 kr"},
	} {
		if got := demoshop.FormatKroner(tc.ore); got != tc.want {
			t.Errorf("FormatKroner(%d) = %q, want %q", tc.ore, got, tc.want)
		}
	}
}

func TestParseKroner(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1", 100},
		{"120", 12000},
		{"120,5", 12050},
		{"120,50", 12050},
		{"120.50", 12050},
		{"120,05", 12005},
		{"0,01", 1},
		{"007", 700},
		{"499,00 kr", 49900},
		{"499 kr", 49900},
		{"499kr", 49900},
		{" 499,00 KR ", 49900},
		{"\t12,3\n", 1230},
		{"650000", 65_000_000},
		{"999999999999999,99", 99_999_999_999_999_999},
	} {
		got, err := demoshop.ParseKroner(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseKroner(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParseKronerRefuses(t *testing.T) {
	for _, in := range []string{
		"", " ", "kr", " kr", ",", ".", ",50", ".5", "5,", "5.", "5,123", "5,5,5", "5.5,5", "1,2.3",
		"-5", "+5", "- 5", "5-", "1 000", "1.000,00", "1e3", "0x10", "NaN", "Inf", "five", "5 øre", "5 NOK",
		"kr 5", "５", "5,٣", "1000000000000000", "99999999999999999999", "12\x00", "\u00a0", "1\u00a02",
		"5,-", "5,a", "a,5", "1_000", "0b1", "kr kr", "5 kr kr",
		"0000000000000000000000000000000000000000000",
	} {
		got, err := demoshop.ParseKroner(in)
		if err == nil {
			t.Errorf("ParseKroner(%q) = %d, want an error", in, got)
			continue
		}
		if !errors.Is(err, demoshop.ErrKroner) {
			t.Errorf("ParseKroner(%q) error %v does not wrap ErrKroner", in, err)
		}
		if got != 0 {
			t.Errorf("ParseKroner(%q) = %d with an error, want 0", in, got)
		}
	}
}

// maxParsable is the largest amount ParseKroner reads: 15 digits of kroner and 99 øre.
const maxParsable = 99_999_999_999_999_999

func FuzzParseKroner(f *testing.F) {
	for _, s := range []string{"499,00 kr", "120.5", "0", ",5", "-1", "1e3", "999999999999999,99", " 7 KR ", "5,"} {
		f.Add(s, int64(len(s))*4999)
	}
	f.Add("", int64(maxParsable))
	f.Add("", int64(maxParsable+1))
	f.Add("", int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		if v, err := demoshop.ParseKroner(s); err == nil {
			if v < 0 || v > maxParsable {
				t.Fatalf("ParseKroner(%q) = %d, outside [0, %d]", s, v, maxParsable)
			}
			back, err := demoshop.ParseKroner(demoshop.FormatKroner(v))
			if err != nil || back != v {
				t.Fatalf("ParseKroner(FormatKroner(%d)) = %d, %v (input %q)", v, back, err, s)
			}
		} else if !errors.Is(err, demoshop.ErrKroner) {
			t.Fatalf("ParseKroner(%q) error %v does not wrap ErrKroner", s, err)
		}

		formatted := demoshop.FormatKroner(n)
		back, err := demoshop.ParseKroner(formatted)
		switch {
		case n >= 0 && n <= maxParsable:
			if err != nil || back != n {
				t.Fatalf("ParseKroner(FormatKroner(%d) = %q) = %d, %v", n, formatted, back, err)
			}
		case err == nil:
			t.Fatalf("ParseKroner(FormatKroner(%d) = %q) = %d, want an error", n, formatted, back)
		}
	})
}

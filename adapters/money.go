package adapters

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// ParseAmount converts a platform's decimal money string ("29.35", "0.9", "12") into minor units (2935,
// 90, 1200) exactly, without floating point. It accepts digits with at most two decimals; it refuses a
// sign, an exponent, more than two decimals, an empty string and values that overflow int64.
func ParseAmount(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty amount")
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") {
		return 0, fmt.Errorf("amount %q is not a decimal number", s)
	}
	if len(frac) > 2 {
		return 0, fmt.Errorf("amount %q has more than 2 decimals", s)
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				if c == '-' {
					return 0, fmt.Errorf("amount %q is negative", s)
				}
				return 0, fmt.Errorf("amount %q is not a decimal number", s)
			}
		}
	}
	for len(frac) < 2 {
		frac += "0"
	}
	var n int64
	for _, c := range whole + frac {
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, fmt.Errorf("amount %q is too large", s)
		}
		n = n*10 + d
	}
	return n, nil
}

// ParseSignedAmount is ParseAmount for a string that may start with "-" (WooCommerce writes refund
// totals as "-5.00"). It returns the absolute value and whether the sign was negative.
func ParseSignedAmount(s string) (minor int64, negative bool, err error) {
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		n, err := ParseAmount(rest)
		return n, true, err
	}
	n, err := ParseAmount(s)
	return n, false, err
}

// FormatAmount writes minor units as a decimal string with two decimals: 2935 is "29.35".
func FormatAmount(minor int64) string {
	sign := ""
	u := uint64(minor)
	if minor < 0 {
		sign, u = "-", uint64(-(minor+1))+1
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}

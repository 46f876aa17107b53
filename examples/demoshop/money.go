package demoshop

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxAmount is the largest amount kasse accepts for a checkout, capture or refund, in øre (650 000,00 kr).
const MaxAmount = 65_000_000

// MinAmount is the smallest checkout amount kasse accepts, in øre (1,00 kr, the Vipps minimum).
const MinAmount = 100

// maxKronerDigits bounds the whole-kroner digits ParseKroner accepts, so that the result always fits int64.
const maxKronerDigits = 15

// maxKronerInput bounds the length of the text ParseKroner looks at.
const maxKronerInput = 40

// ErrKroner is returned (wrapped, with the reason) by ParseKroner for text that is not an amount in kroner.
var ErrKroner = errors.New("not an amount in kroner")

// FormatKroner formats an amount in øre as Norwegian kroner with a decimal comma and no thousands
// separator, using integer arithmetic only: 49900 is "499,00 kr", 5 is "0,05 kr", -150 is "-1,50 kr".
// ParseKroner reads every non-negative result back to the same amount.
func FormatKroner(ore int64) string {
	return formatDecimal(ore) + " kr"
}

// formatDecimal is FormatKroner without the unit: 49900 is "499,00".
func formatDecimal(ore int64) string {
	u := uint64(ore)
	sign := ""
	if ore < 0 {
		sign = "-"
		u = -u // two's complement: also right for math.MinInt64
	}
	frac := u % 100
	digits := strconv.FormatUint(frac, 10)
	if frac < 10 {
		digits = "0" + digits
	}
	return sign + strconv.FormatUint(u/100, 10) + "," + digits
}

// ParseKroner reads an amount in Norwegian kroner, as a merchant types it, exactly into øre without
// floating point: "120" is 12000, "120,5" and "120.50" are 12050, "499,00 kr" is 49900. Surrounding spaces
// and a trailing "kr" are allowed; the decimal separator is a comma or a point, followed by one or two
// digits. Signs, thousands separators, exponents, more than two decimals and more than 15 whole-kroner
// digits are refused with an error wrapping ErrKroner. Zero is a valid result; callers decide whether it
// is a valid amount.
func ParseKroner(s string) (int64, error) {
	if len(s) > maxKronerInput {
		return 0, fmt.Errorf("parse kroner: longer than %d characters: %w", maxKronerInput, ErrKroner)
	}
	t := strings.TrimSpace(s)
	if n := len(t); n >= 2 && strings.EqualFold(t[n-2:], "kr") {
		t = strings.TrimSpace(t[:n-2])
	}
	if t == "" {
		return 0, fmt.Errorf("parse kroner %q: no digits: %w", s, ErrKroner)
	}
	whole, frac, hasSep := t, "", false
	if i := strings.IndexAny(t, ",."); i >= 0 {
		whole, frac, hasSep = t[:i], t[i+1:], true
	}
	if !allDigits(whole) || whole == "" {
		return 0, fmt.Errorf("parse kroner %q: write whole kroner as digits only, like 120 or 120,50: %w", s, ErrKroner)
	}
	if len(whole) > maxKronerDigits {
		return 0, fmt.Errorf("parse kroner %q: more than %d digits before the decimal separator: %w", s, maxKronerDigits, ErrKroner)
	}
	if hasSep && (frac == "" || len(frac) > 2 || !allDigits(frac)) {
		return 0, fmt.Errorf("parse kroner %q: write one or two digits of øre after the decimal separator: %w", s, ErrKroner)
	}
	kr, err := strconv.ParseInt(whole, 10, 64)
	if err != nil { // unreachable with at most 15 digits; kept so that no input can panic or wrap
		return 0, fmt.Errorf("parse kroner %q: %w", s, ErrKroner)
	}
	var ore int64
	switch len(frac) {
	case 1:
		ore = int64(frac[0]-'0') * 10
	case 2:
		ore = int64(frac[0]-'0')*10 + int64(frac[1]-'0')
	}
	return kr*100 + ore, nil
}

// allDigits reports whether s consists of ASCII digits only (true for "").
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

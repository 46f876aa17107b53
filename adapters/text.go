package adapters

import (
	"strings"
	"unicode"
)

// NorwegianMobile returns phone as the 8-digit number the checkout schema wants ("+47 912 34 567" and
// "004791234567" give "91234567"), or "" when it is not one.
func NorwegianMobile(phone string) string {
	var b strings.Builder
	for _, r := range phone {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' || r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return ""
		}
	}
	d := b.String()
	if strings.HasPrefix(phone, "+47") || strings.HasPrefix(strings.TrimSpace(phone), "+47") {
		d = strings.TrimPrefix(d, "47")
	} else if strings.HasPrefix(d, "0047") {
		d = strings.TrimPrefix(d, "0047")
	}
	if len(d) != 8 || (d[0] != '4' && d[0] != '9') {
		return ""
	}
	return d
}

// Text returns s made printable for the checkout schema: control characters become spaces, runs of
// spaces are collapsed, the ends are trimmed, and the result is cut to at most limit runes.
func Text(s string, limit int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.In(r, unicode.C) }), " ")
	if r := []rune(s); len(r) > limit {
		s = strings.TrimSpace(string(r[:limit]))
	}
	return s
}

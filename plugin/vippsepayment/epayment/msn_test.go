package epayment

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestEventMSNMatchesEncodingJSON holds eventMSN's string reading to json.Unmarshal's.
func TestEventMSNMatchesEncodingJSON(t *testing.T) {
	std := func(raw json.RawMessage) string {
		t := bytes.TrimSpace(raw)
		if len(t) == 0 {
			return ""
		}
		if t[0] == '"' {
			var s string
			if json.Unmarshal(t, &s) != nil {
				return ""
			}
			return strings.TrimSpace(s)
		}
		return string(t)
	}
	for _, raw := range []string{``, ` `, `"123456"`, ` "123456" `, `" 123456\t"`, `"\u0031\u0032"`, `"\ud800"`, "\"bad \xff\"",
		`"unterminated`, `"a" "b"`, `"a\q"`, `123456`, `null`, `""`, `"\"quoted\""`, `{"a":1}`} {
		if got, want := eventMSN(json.RawMessage(raw)), std(json.RawMessage(raw)); got != want {
			t.Errorf("eventMSN(%q) = %q, want %q", raw, got, want)
		}
	}
}

package report

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
)

func TestParseTime(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2022-10-01T16:33:00.824993+0200", "2022-10-01T14:33:00.824993Z"},
		{"2022-10-02T00:00:00.000000+0200", "2022-10-01T22:00:00Z"},
		{"2023-09-27T14:11:12.640000Z", "2023-09-27T14:11:12.64Z"},
		{"2023-09-27T14:11:12Z", "2023-09-27T14:11:12Z"},
		{"2023-09-27T14:11:12+02:00", "2023-09-27T12:11:12Z"},
		{"2023-09-27T14:11:12.5", "2023-09-27T14:11:12.5Z"}, // no zone: the spec says UTC
		{"yesterday", ""},
		{"2023-13-27T14:11:12Z", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, ok := parseTime(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("parseTime(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestSegmentAndDate(t *testing.T) {
	for s, want := range map[string]bool{"302321": true, "Acme-Central_1~x": true, "a.b": true, "": false, ".": false,
		"..": false, "a..b": false, ".a": false, "a.": false, "a/b": false, "a%2Fb": false, "a b": false, "ø": false} {
		if segment(s) != want {
			t.Errorf("segment(%q) = %v", s, !want)
		}
	}
	for s, want := range map[string]bool{"2022-10-01": true, "2024-02-29": true, "2023-02-29": false, "2022-1-01": false,
		"2022-10-01T00:00:00Z": false, "": false} {
		if validDate(s) != want {
			t.Errorf("validDate(%q) = %v", s, !want)
		}
	}
}

// TestReadPageFields: numbers as strings, ids as numbers, whole floats, nulls, unknown keys and escapes
// are read; anything else names its field.
func TestReadPageFields(t *testing.T) {
	q := abi.ReportQuery{LedgerID: "1", Topic: "funds"}
	tests := []struct {
		name, body string
		want       abi.LedgerEntry
		err        string
	}{
		{"loose types", `{"cursor":"Mw==","items":[{"amount":"100","balanceBefore":1.0e2,"balanceAfter":null,"pspReference":123,
			"entryType":"capture","reference":"a\u00e5\"b","extra":{"nested":[1,{"x":null}]},"ledgerDate":null}]}`,
			abi.LedgerEntry{EntryType: "capture", Amount: 100, BalanceBefore: 100, PSPReference: "123", Reference: "aå\"b"}, ""},
		{"fraction", `{"cursor":"x","items":[{"amount":1.5}]}`, abi.LedgerEntry{}, `items/0/amount: "1.5" is not a whole amount`},
		{"amount an object", `{"cursor":"x","items":[{"amount":{}}]}`, abi.LedgerEntry{}, "items/0/amount: want a number"},
		{"entry type a bool", `{"cursor":"x","items":[{"amount":1,"entryType":true}]}`, abi.LedgerEntry{}, "items/0/entryType: want a string"},
		{"item not an object", `{"cursor":"x","items":[1]}`, abi.LedgerEntry{}, "items/0: not a JSON object"},
		{"tryLater a string", `{"tryLater":"yes"}`, abi.LedgerEntry{}, "tryLater: want a boolean"},
		{"cut off", `{"cursor":"x","items":[{"amount":1`, abi.LedgerEntry{}, "unexpected end"},
		{"bad currency", `{"cursor":"x","items":[{"amount":1,"currency":"nok"}]}`, abi.LedgerEntry{}, "items/0/currency"},
		{"long reference", `{"cursor":"x","items":[{"amount":1,"reference":"` + strings.Repeat("r", 201) + `"}]}`, abi.LedgerEntry{}, "items/0/reference: longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out abi.ReportPage
			err := readPage([]byte(tt.body), q, &out)
			switch {
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("err %v, want %q", err, tt.err)
			case tt.err == "" && err != nil:
				t.Fatal(err)
			case tt.err == "" && (len(out.Entries) != 1 || out.Entries[0] != tt.want):
				t.Fatalf("entries %+v, want %+v", out.Entries, tt.want)
			}
		})
	}
}

// FuzzReadPage: any answer body gives a page or an error, never a panic, and a page that encodes.
func FuzzReadPage(f *testing.F) {
	f.Add([]byte(`{"cursor":"Mw==","hasMore":true,"items":[{"amount":1,"time":"2022-10-01T16:33:00+0200","entryType":"x"}]}`))
	f.Add([]byte(`{"items":[{"amount":"1e3"},{"amount":-0}],"tryLater":true}`))
	f.Add([]byte(`{"items":[{"reference":"\ud800","amount":1}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var out abi.ReportPage
		if readPage(body, abi.ReportQuery{LedgerID: "1", Topic: "fees"}, &out) != nil {
			return
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatal(err)
		}
	})
}

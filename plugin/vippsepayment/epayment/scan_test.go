package epayment

import (
	"bytes"
	"testing"

	"github.com/kassehq/kasse/plugin/plugintest"
	"github.com/kassehq/kasse/plugin/sdk"
)

// fastReadKeys are the members whose mutations the fast readers must notice.
var fastReadKeys = []string{"reference", "amount", "state", "aggregate", "value", "currency", "capturedAmount",
	"msn", "success", "name", "idempotencyKey", "pspReference", "authorizedAmount", "redirectUrl"}

func goldenBodies(t testing.TB) [][]byte {
	return plugintest.GoldenBodies(t, "../testdata/golden/*.input.json")
}

// sameAsEncodingJSON checks that where read accepts body, encoding/json decodes it into the same value.
func sameAsEncodingJSON[T any](t testing.TB, body []byte, read func(*sdk.Scanner, *T) error) bool {
	return plugintest.SameAsGeneral(t, body, read, decodeObject)
}

// checkAllReaders holds every fast reader to encoding/json on body and reports which of them accepted it.
func checkAllReaders(t testing.TB, body []byte) []bool {
	return []bool{
		sameAsEncodingJSON(t, body, readEvent),
		sameAsEncodingJSON(t, body, readPaymentState),
		sameAsEncodingJSON(t, body, readCreateResponse),
	}
}

// TestFastDecodeMatchesEncodingJSON holds the sdk.Scanner readers to encoding/json on every golden body
// and many mutations of each: what the fast path accepts decodes to the same value.
func TestFastDecodeMatchesEncodingJSON(t *testing.T) {
	plugintest.CheckFastReads(t, goldenBodies(t), fastReadKeys, checkAllReaders)
}

// FuzzFastDecode holds the fast readers to encoding/json on any input.
func FuzzFastDecode(f *testing.F) {
	for _, b := range goldenBodies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAllReaders(t, body)
		for _, read := range []func([]byte) error{
			func(b []byte) error { var e event; return decodeFast(b, &e, readEvent) },
			func(b []byte) error { var p paymentState; return decodeFast(b, &p, readPaymentState) },
			func(b []byte) error { var r createResponse; return decodeFast(b, &r, readCreateResponse) },
		} {
			_ = read(bytes.Clone(body)) // must not panic
		}
	})
}

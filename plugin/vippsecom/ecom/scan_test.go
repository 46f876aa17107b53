package ecom

import (
	"bytes"
	"testing"

	"github.com/kassehq/kasse/plugin/plugintest"
	"github.com/kassehq/kasse/plugin/sdk"
)

// fastReadKeys are the members whose mutations the fast readers must notice.
var fastReadKeys = []string{"orderId", "amount", "status", "transactionInfo", "userDetails", "shippingDetails",
	"operationSuccess", "transactionLogHistory", "shippingCost", "addressId", "merchantSerialNumber", "firstName",
	"url", "transaction", "transactionSummary", "capturedAmount", "refundedAmount", "transactionText", "timeStamp"}

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
		sameAsEncodingJSON(t, body, readCallbackBody),
		sameAsEncodingJSON(t, body, readDetailsBody),
		sameAsEncodingJSON(t, body, readShippingRequest),
		sameAsEncodingJSON(t, body, readInitiateBody),
		sameAsEncodingJSON(t, body, readActionBody),
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
			func(b []byte) error { var c callback; return decodeFast(b, &c, readCallbackBody) },
			func(b []byte) error { var d transactionDetails; return decodeFast(b, &d, readDetailsBody) },
			func(b []byte) error { var r shippingRequest; return decodeFast(b, &r, readShippingRequest) },
			func(b []byte) error { var r initiateResponse; return decodeFast(b, &r, readInitiateBody) },
			func(b []byte) error { var r actionResponse; return decodeFast(b, &r, readActionBody) },
		} {
			_ = read(bytes.Clone(body)) // must not panic
		}
	})
}

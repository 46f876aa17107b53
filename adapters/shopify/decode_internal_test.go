package shopify

import (
	"os"
	"testing"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/adapters/adaptertest"
)

// TestDecodeMatchesEncodingJSON holds adapters.DecodeJSON to encoding/json for every type the adapter
// decodes, on the fixtures and their variants: every order, fulfillment and refund the hook reads, and
// every refusal with its field, is what it was with encoding/json alone.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	var bodies [][]byte
	for _, name := range []string{"shopify-orders-create.json", "shopify-checkouts-create.json"} {
		raw, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, adaptertest.JSONVariants(raw)...)
	}
	bodies = append(bodies, []byte(`{"id":5,"order_id":6}`), []byte(`{"id":5} trailing`), []byte(`{"id":"5"}`),
		[]byte(`{"id":18446744073709551616,"order_id":1e3}`), []byte(`null`), []byte(``))
	t.Run("order", func(t *testing.T) { adaptertest.SameAsEncodingJSON(t, adapters.DecodeJSON[order], bodies) })
	t.Run("fulfillment", func(t *testing.T) { adaptertest.SameAsEncodingJSON(t, adapters.DecodeJSON[fulfillment], bodies) })
	t.Run("refund", func(t *testing.T) { adaptertest.SameAsEncodingJSON(t, adapters.DecodeJSON[refund], bodies) })
}

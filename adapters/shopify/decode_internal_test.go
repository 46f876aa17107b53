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
	// The orders are large (the race detector makes a decode about 20 times slower): the order type gets
	// every third variant, the two small types every seventh; odd steps still reach every member and every
	// kind of edit (JSONVariants makes them in runs).
	t.Run("order", func(t *testing.T) { adaptertest.SameAsEncodingJSON(t, adapters.DecodeJSON[order], every(bodies, 3)) })
	t.Run("fulfillment", func(t *testing.T) {
		adaptertest.SameAsEncodingJSON(t, adapters.DecodeJSON[fulfillment], every(bodies, 7))
	})
	t.Run("refund", func(t *testing.T) { adaptertest.SameAsEncodingJSON(t, adapters.DecodeJSON[refund], every(bodies, 7)) })
}

// every returns every nth of bodies, starting with the first (the fixture itself).
func every(bodies [][]byte, n int) [][]byte {
	var out [][]byte
	for i := 0; i < len(bodies); i += n {
		out = append(out, bodies[i])
	}
	return out
}

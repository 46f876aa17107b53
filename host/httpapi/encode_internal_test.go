package httpapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/kassehq/kasse/host/internal/randsession"
)

// TestSessionAnswerIsPureJSON: writeSession's body is byte for byte what gin's PureJSON (encoding/json
// without HTML escaping) writes for the same view.
func TestSessionAnswerIsPureJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		v := view(randsession.New(rng))
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		got, err := encodeView(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("session %d:\nencodeView %s\nPureJSON   %s", i, got, want.Bytes())
		}
	}
}

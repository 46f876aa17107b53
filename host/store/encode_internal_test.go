package store

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/kassehq/kasse/host/internal/randsession"
)

// TestEncodeSessionIsEncodingJSON: encodeSession must give exactly encoding/json's bytes, because an
// update from a snapshot compares the snapshot's encoding with the stored bytes (written by any version
// of kasse).
func TestEncodeSessionIsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		s := randsession.New(rng)
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeSession(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("session %d:\nencodeSession %s\nencoding/json %s", i, got, want)
		}
	}
}

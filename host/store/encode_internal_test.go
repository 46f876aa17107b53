package store

import (
	"encoding/json"
	"hash/fnv"
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

// TestPartitionOfIsFNV1a: partitionOf names where every stored key lives; it must stay hash/fnv's
// FNV-1a of the parts joined by a 0 byte.
func TestPartitionOfIsFNV1a(t *testing.T) {
	for _, parts := range [][]string{{""}, {"a"}, {"s-0123456789abcdef"}, {"demo", "order-1001"}, {"", ""}, {"x", "", "Tromsø"}} {
		h := fnv.New32a()
		for i, p := range parts {
			if i > 0 {
				_, _ = h.Write([]byte{0})
			}
			_, _ = h.Write([]byte(p))
		}
		if got, want := partitionOf(parts...), int(h.Sum32()%Partitions); got != want {
			t.Errorf("partitionOf(%q) = %d, want %d", parts, got, want)
		}
	}
}

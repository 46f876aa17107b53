package host_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/internal/testredis"
)

// TestKasseOnReplicatedCluster runs kasse on a six-node Redis Cluster (three primaries with a replica
// each) configured through KASSE_REDIS_URL in go-redis's cluster URL form: a payment goes from checkout
// to capture, a primary is killed and its replica takes over, and kasse keeps serving the old session and
// new ones.
func TestKasseOnReplicatedCluster(t *testing.T) {
	cluster := testredis.StartReplicatedCluster(t)
	addrs := cluster.Addrs()
	url := "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
	s := newStack(t, stackOptions{env: map[string]string{"KASSE_REDIS_URL": url}})

	id, _ := s.createAuthorized(30000)
	if res := s.do("POST", "/v1/checkouts/"+id+"/capture", map[string]any{"amount": 10000}); res.status != http.StatusOK {
		t.Fatalf("capture: %d %s", res.status, res.raw)
	}

	// Writes acknowledged but not yet replicated may be lost in a failover; this test is about kasse
	// finding the new primaries, so let the replicas catch up first (the chaos suite does not).
	if err := cluster.WaitReplicated(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.KillPrimary(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The failover is over when KillPrimary returns, but a client learns the new slot owners on its next
	// redirect or refresh: poll, with a deadline, until kasse serves again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := s.do("GET", "/v1/checkouts/"+id, nil)
		if res.status == http.StatusOK {
			expectAmounts(t, res, "state=captured amount=30000 authorized=30000 captured=10000 refunded=0")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after failover: %d %s", res.status, res.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	id2, orderID2 := s.create(20000)
	if err := s.sim.Approve(orderID2, "91234567"); err != nil {
		t.Fatal(err)
	}
	s.waitState(id2, "authorized")
}

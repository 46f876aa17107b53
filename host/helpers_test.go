package host_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/examples/vippssim"
)

const vippssimDrop = vippssim.CallbackDrop

// createAuthorized creates a checkout of amount, has the customer approve it at the simulator and waits
// until kasse has it authorized; it returns the session id and the Vipps orderId.
func (s *stack) createAuthorized(amount int64) (id, orderID string) {
	s.t.Helper()
	id, orderID = s.create(amount)
	if err := s.sim.Approve(orderID, "91234567"); err != nil {
		s.t.Fatal(err)
	}
	s.waitState(id, "authorized")
	return id, orderID
}

// approvedUndelivered creates a checkout of amount, has the customer approve it at the simulator with its
// callbacks dropped, and returns the session id and the callback Vipps would have sent.
func (s *stack) approvedUndelivered(amount int64) (string, vippssim.DeliveredCallback) {
	s.t.Helper()
	s.sim.SetCallbackMode(vippssimDrop)
	id, orderID := s.create(amount)
	if err := s.sim.Approve(orderID, "91234567"); err != nil {
		s.t.Fatal(err)
	}
	return id, lastCallback(s.t, s, orderID)
}

// lastCallback waits for the simulator to have produced a callback for orderID (sent or dropped).
func lastCallback(t testing.TB, s *stack, orderID string) vippssim.DeliveredCallback {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		cbs := s.sim.Callbacks()
		for i := len(cbs) - 1; i >= 0; i-- {
			if cbs[i].OrderID == orderID {
				return cbs[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no callback for %s", orderID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// redisKeys counts the keys in the test's redis database (on every primary of a cluster URL), except the
// store's layout marker, which kasse writes at start.
func redisKeys(t *testing.T, url string) int64 {
	t.Helper()
	ctx := context.Background()
	var c redis.UniversalClient
	if strings.Contains(url, "addr=") {
		opts, err := redis.ParseClusterURL(url)
		if err != nil {
			t.Fatal(err)
		}
		c = redis.NewClusterClient(opts)
	} else {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		c = redis.NewClient(opts)
	}
	defer c.Close()
	var n atomic.Int64
	count := func(ctx context.Context, c *redis.Client) error {
		k, err := c.DBSize(ctx).Result()
		n.Add(k)
		return err
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, count)
	} else {
		err = count(ctx, c.(*redis.Client))
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Exists(ctx, "kasse:{g}:layout").Result()
	if err != nil {
		t.Fatal(err)
	}
	return n.Load() - m
}

// simPaymentCount is how many payments were initiated at the simulator.
func simPaymentCount(t *testing.T, s *stack) int {
	t.Helper()
	resp, err := http.Get(s.simURL + "/_sim/payments")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// wooMerchant is the extraMerchants block of merchant "woo": a WooCommerce shop at shopURL (the gateway
// id "vipps", the default) whose webhook secret and REST API key and secret are read from the variables
// wooEnv sets.
func wooMerchant(shopURL string) string {
	return `
  woo:
    plugin: vipps-ecom
    apiKeyEnv: TEST_API_KEY
    returnUrlPrefixes: ["` + shopURL + `/"]
    vipps:
      baseUrl: {{simURL}}
      merchantSerialNumber: "123456"
      clientId: demo-client-id
      clientSecretEnv: TEST_CLIENT_SECRET
      subscriptionKeyEnv: TEST_SUBSCRIPTION_KEY
    platform:
      kind: woocommerce
      webhookSecretEnv: TEST_WOO_SECRET
      baseUrl: ` + shopURL + `/
      consumerKeyEnv: TEST_WOO_KEY
      consumerSecretEnv: TEST_WOO_CONSUMER_SECRET
      gatewayId: vipps
`
}

// wooEnv is the environment of wooMerchant's shop, with webhook secret secret.
func wooEnv(secret string) map[string]string {
	return map[string]string{"TEST_WOO_SECRET": secret, "TEST_WOO_KEY": "ck_test", "TEST_WOO_CONSUMER_SECRET": "cs_test"}
}

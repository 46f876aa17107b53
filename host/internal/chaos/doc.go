// Package chaos is kasse's chaos suite: it runs kasse as an operator would, several instances on a Redis
// Cluster with replicas, drives a bounded mixed load of payments through them while it breaks things on a
// schedule, and then checks that no money and no platform notification went astray. It owns nothing but
// the suite (TestChaos and its harness, all in _test.go files); it starts real processes and talks to
// them over HTTP on loopback only.
//
// # What runs
//
//   - A Redis Cluster of three primaries with a replica each: six redis-server processes
//     (host/internal/testredis.StartReplicatedCluster), with a one-second node timeout.
//   - Three kasse instances: the built host/cmd/kasse binary, each with a generated YAML config (its own
//     loopback port and ops port) and its secrets and the cluster's URL (KASSE_REDIS_URL, go-redis's
//     cluster URL form) in environment variables. Short reconciler intervals and a short pending timeout,
//     so that the run settles within minutes.
//   - The Vipps simulator: the built examples/vippssim/cmd/vippssim binary, a real process so that it can
//     be frozen with SIGSTOP.
//   - Fake platforms, in process on loopback: a WooCommerce REST API, a Shopify Admin GraphQL API and a
//     generic status receiver. They record every status update kasse sends, and can answer 503.
//
// Three merchants share the simulator's demo tenant: "shop" (the checkout API and Express Checkout,
// notified through the generic adapter), "woo" (WooCommerce webhooks) and "shopi" (Shopify webhooks).
//
// # The load
//
// A few scenarios a second, round-robin over the instances (a refused connection goes to the next
// instance, as behind a load balancer): regular checkouts through the API that are approved through the
// simulator's control API and then captured in full, captured in part and then the rest, captured and
// partly refunded, cancelled, or abandoned; Express checkouts (POST /v1/express/shop) that are approved
// and captured; WooCommerce order.created then order.updated to completed (capture) or cancelled; Shopify
// orders/create then orders/fulfilled (capture). Hooks are signed as the platforms sign them. Half the
// API shops send an Idempotency-Key and retry with the same key; the other half send none and retry
// with a new request. A shop retries a request that got no answer, a 5xx, or a 409 (up to 4 times).
//
// # The faults
//
// On a schedule of 120-second cycles (the short form has one cycle squeezed into its duration, so every
// kind happens at least once; `make chaos DURATION=10m` repeats the cycle): kill -9 of a kasse instance
// and its restart a few seconds later; kill -9 of the Redis primary holding the most keys (its replica is
// promoted, then the old primary rejoins as a replica; writes not yet replicated may be lost, as in
// production); the simulator frozen with SIGSTOP and resumed with SIGCONT; the simulator
// slow (PUT /_sim/faults latency); 30% of callbacks dropped; callbacks duplicated, delayed and reordered;
// the platform receivers answering 503 for a while.
//
// # The checks
//
// When the load has stopped, every fault is undone and the suite polls the invariants until they all hold
// or a deadline passes (the pending timeout plus a minute), then prints the table below and fails the test
// for every invariant that does not hold:
//
//	invariant                                    checked  failed  result
//	amounts equal the simulator's                    143       0  ok
//	no operation applied twice                       143       2  FAIL
//	    order chaos-...: capture applied 2 times, asked 1 (keys [k1])
//	...
//
// "checked" is how many sessions (or answers) the invariant looked at, "failed" how many broke it; the
// first failures are listed under it. The invariants:
//
//   - amounts equal the simulator's: every payment the simulator knows (found through its fallBack URL,
//     so creates that kasse answered with an error count too) has a kasse session whose captured and
//     refunded amounts equal the simulator's, and which is reserved, cancelled or final exactly when the
//     simulator says so.
//   - no operation applied twice: the simulator's operations log (GET /_sim/operations) shows, for each
//     payment and kind (capture, refund, cancel), at most as many applied (not replayed) operations as the
//     shop asked for: one per distinct Idempotency-Key or hook delivery, one per keyless attempt.
//   - platform notifications delivered: for every session of a platform merchant, the receiver got
//     (deduplicated by the Kasse-Delivery-Id header) the updates its final state calls for: paid when it
//     was reserved, captured and refunded amounts adding up to the session's, cancelled or failed when it
//     ended so; for the generic receiver, the delivery with the highest Kasse-Sequence carries the
//     session's absolute amounts.
//   - no session pending past its timeout: every session older than the pending timeout (plus the
//     reconciler's slack) has left pending.
//   - no operation left in doubt: every operation kasse recorded on a session (GET /v1/checkouts/{id},
//     "operations") has a known outcome, succeeded or failed; one still in doubt blocks the session's
//     captures, refunds and cancels (409).
//   - no 500 answers: no kasse answer to the load had status 500 (503 with Retry-After is the degraded
//     answer and is counted among the figures instead).
//
// Under the table come the figures: kasse's answers by request kind (create, capture, refund, cancel,
// get, the platform hooks, and check: the suite's own reads while it settles) and answer class (409 is
// "another operation is in doubt", 504 "the outcome is not known yet", 503 the degraded answer, "no
// answer" a request whose connection broke), the faults injected by kind (with a note for any the
// simulator could not take), and the platform requests (those refused with 503 while down included).
//
// # Running it
//
//	go test -run TestChaos -count=1 ./host/internal/chaos/                         # short form, ~2 minutes
//	go test -run TestChaos -count=1 -timeout 30m ./host/internal/chaos/ -chaos.duration=10m
//	make chaos DURATION=10m
//
// The duration may also come from KASSE_CHAOS_DURATION. The processes' logs are written to the test's
// temporary directory, or to KASSE_CHAOS_LOGS to keep them; their tails are printed when the test fails.
package chaos

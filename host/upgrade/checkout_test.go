package upgrade_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/provider"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/host/upgrade"
	"github.com/kassehq/kasse/plugin/abi"
)

// Interface guard: the checkout service routes new checkouts and sessions through the manager's versions.
var _ checkout.VersionedPlugins = (*upgrade.Manager)(nil)

// detailsProvider answers initiate and details requests as Vipps does.
type detailsProvider struct{}

func (detailsProvider) Do(ctx context.Context, call provider.Call) (*abi.Response, error) {
	if strings.HasSuffix(call.Request.Path, "/details") {
		orderID := strings.TrimSuffix(strings.TrimPrefix(call.Request.Path, "/ecomm/v2/payments/"), "/details")
		body, _ := json.Marshal(map[string]any{"orderId": orderID, "transactionLogHistory": []map[string]any{{
			"amount": 10000, "transactionText": "Test", "transactionId": "1", "timeStamp": "2019-02-05T12:25:11.901Z",
			"operation": "INITIATE", "requestId": "", "operationSuccess": true}}})
		return &abi.Response{Status: 200, Body: body}, nil
	}
	return benchProvider{}.Do(ctx, call)
}

func versionCalls(t *testing.T, m *upgrade.Manager) map[string]uint64 {
	t.Helper()
	st, err := m.Status("vipps-ecom")
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]uint64{}
	for _, v := range st.Versions {
		calls[v.Version] = v.Calls
	}
	return calls
}

// TestCheckoutsFollowTheirVersion runs the checkout service on the manager: a canary gets its share of new
// checkouts, each session records the version that created it and its later operations go to that version,
// and once the canary is rolled back its sessions go to the active version.
func TestCheckoutsFollowTheirVersion(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	m := newManager(t, pub, nil)
	golden := ecomGolden(t)
	if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden)},
		upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", "1.1.0", withCustomSection(mods[ecomPkg], "canary"), golden)},
		upgrade.Activation{Mode: upgrade.ModeCanary, Percent: 30}); err != nil {
		t.Fatal(err)
	}
	svc, err := checkout.New(checkout.Config{Store: store.NewMemory(), Plugins: m, Merchants: benchMerchants{},
		Provider: detailsProvider{}, Schemas: compiledSchemas(t), PublicURL: "https://kasse.example",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	byVersion := map[string][]string{}
	for i := range 60 {
		sess, _, err := svc.Create(ctx, payment.Checkout{Merchant: "shop", Reference: fmt.Sprint("order-", i), Amount: 10000,
			Currency: "NOK", Description: "Test", ReturnURL: "https://shop.example/done"}, "")
		if err != nil {
			t.Fatal(err)
		}
		byVersion[sess.PluginVersion] = append(byVersion[sess.PluginVersion], sess.ID)
	}
	if n := len(byVersion["1.1.0"]); n < 6 || n > 30 {
		t.Fatalf("the 30%% canary created %d of 60 sessions", n)
	}
	t.Logf("sessions per version: 1.0.0 %d, 1.1.0 %d", len(byVersion["1.0.0"]), len(byVersion["1.1.0"]))

	refresh := func(id string) map[string]uint64 {
		t.Helper()
		before := versionCalls(t, m)
		if _, err := svc.Refresh(ctx, id); err != nil {
			t.Fatal(err)
		}
		after := versionCalls(t, m)
		return map[string]uint64{"1.0.0": after["1.0.0"] - before["1.0.0"], "1.1.0": after["1.1.0"] - before["1.1.0"]}
	}
	if d := refresh(byVersion["1.1.0"][0]); d["1.1.0"] != 2 || d["1.0.0"] != 0 {
		t.Errorf("refresh of a canary session called %v, want build and read on 1.1.0", d)
	}
	if d := refresh(byVersion["1.0.0"][0]); d["1.0.0"] != 2 || d["1.1.0"] != 0 {
		t.Errorf("refresh of a 1.0.0 session called %v", d)
	}
	if err := m.Rollback(ctx, "vipps-ecom"); err != nil {
		t.Fatal(err)
	}
	if d := refresh(byVersion["1.1.0"][1]); d["1.0.0"] != 2 || d["1.1.0"] != 0 {
		t.Errorf("refresh of a rolled-back canary's session called %v, want the active 1.0.0", d)
	}
}

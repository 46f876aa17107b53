package standard_test

import (
	"testing"

	"github.com/kassehq/kasse/adapters"
	_ "github.com/kassehq/kasse/adapters/standard"
)

func TestBuiltinsRegistered(t *testing.T) {
	var ids []string
	modes := map[string]adapters.Mode{}
	for _, info := range adapters.Registered() {
		ids = append(ids, info.ID)
		modes[info.ID] = info.Mode
	}
	if got := len(ids); got != 3 || ids[0] != "generic" || ids[1] != "shopify" || ids[2] != "woocommerce" {
		t.Errorf("registered %q", ids)
	}
	if modes["shopify"] != adapters.ModeAckFirst || modes["woocommerce"] != adapters.ModeSync {
		t.Errorf("modes %v", modes)
	}
}

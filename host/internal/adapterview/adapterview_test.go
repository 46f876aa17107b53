package adapterview_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/internal/adapterview"
)

// strs returns every string reachable from v, secrets included (reflect reads a Secret's underlying
// string without calling its redacting methods).
func strs(v reflect.Value) []string {
	switch v.Kind() {
	case reflect.String:
		return []string{v.String()}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return strs(v.Elem())
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			out = append(out, strs(v.Field(i))...)
		}
		return out
	case reflect.Slice, reflect.Array:
		var out []string
		for i := range v.Len() {
			out = append(out, strs(v.Index(i))...)
		}
		return out
	case reflect.Map:
		var out []string
		for it := v.MapRange(); it.Next(); {
			out = append(out, strs(it.Key())...)
			out = append(out, strs(it.Value())...)
		}
		return out
	}
	return nil
}

// types returns every type reachable from t through fields, elements and keys.
func types(t reflect.Type, seen map[reflect.Type]bool) {
	if seen[t] {
		return
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		types(t.Elem(), seen)
	case reflect.Map:
		types(t.Key(), seen)
		types(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			types(t.Field(i).Type, seen)
		}
	}
}

// TestMerchantTypeHasNoRoomForProviderSecrets: no type reachable from adapters.Merchant comes from
// host/config (where config.Vipps, with the client secret and subscription key, lives) or is named like
// a provider setting, so no future conversion can hand an adapter the Vipps credentials by accident.
func TestMerchantTypeHasNoRoomForProviderSecrets(t *testing.T) {
	seen := map[reflect.Type]bool{}
	types(reflect.TypeFor[adapters.Merchant](), seen)
	vipps := reflect.TypeFor[config.Vipps]()
	for typ := range seen {
		if typ == vipps || typ.PkgPath() == vipps.PkgPath() {
			t.Errorf("adapters.Merchant reaches %s from host/config", typ)
		}
		if typ.Kind() != reflect.Struct {
			continue
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			for j := range vipps.NumField() {
				if vf := vipps.Field(j); vf.Type == reflect.TypeFor[config.Secret]() && f.Name == vf.Name {
					t.Errorf("%s.%s has the name of the Vipps setting %s", typ, f.Name, vf.Name)
				}
			}
		}
	}
}

// full is a merchant with every platform setting and both Vipps secrets set to distinct values.
func full() config.Merchant {
	return config.Merchant{ID: "m1", Plugin: "vipps-ecom", ReturnURLPrefixes: []string{"https://shop.example/"},
		Vipps: config.Vipps{ClientSecretEnv: "V_CS", SubscriptionKeyEnv: "V_SK",
			ClientSecret: "vipps-client-secret-value", SubscriptionKey: "vipps-subscription-key-value"},
		Platform: &config.Platform{Kind: "woocommerce", WebhookSecretEnv: "P_WS", PreviousWebhookSecretEnv: "P_PWS",
			BaseURL: "https://shop.example", ConsumerKeyEnv: "P_CK", ConsumerSecretEnv: "P_CS", AccessTokenEnv: "P_AT",
			APIVersion: "2026-07", GatewayID: "vipps", CaptureOnStatus: "completed", PaidStatus: "processing",
			FailedStatus: "failed", ReturnURL: "https://shop.example/done/{id}", Options: map[string]string{"storeId": "42"},
			WebhookSecret: "platform-webhook-secret", PreviousWebhookSecret: "platform-previous-secret",
			ConsumerKey: "ck_platform", ConsumerSecret: "cs_platform", AccessToken: "platform-access-token"}}
}

// TestMerchantCopiesThePlatformSectionOnly: every setting of the platform section reaches the adapter
// under the same name with the same value, the Vipps secrets do not, and the adapter gets copies.
func TestMerchantCopiesThePlatformSectionOnly(t *testing.T) {
	m := full()
	got := adapterview.Merchant(m)
	if got.ID != "m1" || !slices.Equal(got.ReturnURLPrefixes, m.ReturnURLPrefixes) || got.Platform == nil {
		t.Fatalf("got %+v", got)
	}
	// Every field of config.Platform has its counterpart, so a new platform setting cannot be forgotten.
	src, dst := reflect.ValueOf(*m.Platform), reflect.ValueOf(*got.Platform)
	for i := range src.NumField() {
		name := src.Type().Field(i).Name
		f := dst.FieldByName(name)
		if !f.IsValid() {
			t.Errorf("adapters.Platform has no field %s", name)
			continue
		}
		if !slices.Equal(strs(src.Field(i)), strs(f)) {
			t.Errorf("%s: got %q, want %q", name, strs(f), strs(src.Field(i)))
		}
	}
	all := strs(reflect.ValueOf(got))
	for _, secret := range []config.Secret{m.Vipps.ClientSecret, m.Vipps.SubscriptionKey} {
		if slices.Contains(all, secret.Reveal()) {
			t.Errorf("the adapter's merchant holds a Vipps secret")
		}
	}
	if !slices.Contains(all, "platform-webhook-secret") || !slices.Contains(all, "platform-access-token") {
		t.Errorf("the platform secrets are missing: %q", all)
	}
	got.Platform.Options["storeId"] = "changed"
	got.ReturnURLPrefixes[0] = "changed"
	if m.Platform.Options["storeId"] != "42" || m.ReturnURLPrefixes[0] != "https://shop.example/" {
		t.Error("the adapter's merchant shares maps or slices with the config")
	}
	if none := adapterview.Merchant(config.Merchant{ID: "plain"}); none.Platform != nil {
		t.Errorf("a merchant without a platform got %+v", none.Platform)
	}
}

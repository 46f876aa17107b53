package sdk_test

import (
	"fmt"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// A plugin's handler reuses its output values and builds the provider's request body with sdk.JSON, so
// that a call allocates nothing once warm. In the plugin's main package, init registers it:
//
//	func init() { sdk.Handle(handle) }
func Example() {
	var (
		out  abi.Output
		req  abi.Request
		fail abi.Error
		body sdk.JSON
	)
	handle := func(in *abi.Input) *abi.Output {
		out = abi.Output{}
		if in.Op != abi.OpBuildInitiate {
			fail = abi.Error{Code: "invalid_input", Message: "unsupported operation " + string(in.Op)}
			out.Error = &fail
			return &out
		}
		body.Reset().Obj().
			ObjField("amount").Int("value", in.Session.Amount).Str("currency", in.Session.Currency).End().
			Str("reference", in.Session.Reference).
			Str("paymentDescription", in.Session.Description).
			End()
		req = abi.Request{Method: "POST", Path: "/epayment/v1/payments", Body: body.Bytes(), IdempotencyHeader: "Idempotency-Key"}
		out.OK, out.Request = true, &req
		return &out
	}

	fmt.Println(string(sdk.Run(handle, []byte(`{"op":"build_initiate","session":{"reference":"order-1","amount":1000,"currency":"NOK","description":"Kaffe & kake"}}`))))
	fmt.Println(string(sdk.Run(handle, []byte(`{"op":"read_details"}`))))
	fmt.Println(string(sdk.Run(handle, []byte(`{"op":`))))
	// Output:
	// {"ok":true,"request":{"method":"POST","path":"/epayment/v1/payments","body":{"amount":{"value":1000,"currency":"NOK"},"reference":"order-1","paymentDescription":"Kaffe \u0026 kake"},"idempotencyHeader":"Idempotency-Key"}}
	// {"ok":false,"error":{"code":"invalid_input","message":"unsupported operation read_details"}}
	// {"ok":false,"error":{"code":"invalid_input","message":"unexpected end of JSON input"}}
}

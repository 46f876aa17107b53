// Command echo is the test plugin for host/plugins: it answers every operation with a request whose body
// echoes parts of the input, built with sdk.JSON, and reads errors as data.
package main

import (
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

func init() { sdk.Handle(handle) }

var (
	out  abi.Output
	req  abi.Request
	errv abi.Error
	body sdk.JSON
)

func handle(in *abi.Input) *abi.Output {
	out = abi.Output{}
	switch in.Op {
	case "fail":
		errv = abi.Error{Code: "invalid_input", Message: "asked to fail: " + in.Session.Description}
		out.Error = &errv
		return &out
	case "panic":
		panic("asked to panic")
	}
	body.Reset()
	body.Obj().
		Str("op", string(in.Op)).
		Str("merchant", in.Merchant.ID).
		Str("reference", in.Session.Reference).
		Int("amount", in.Session.Amount).
		Str("currency", in.Session.Currency).
		Str("description", in.Session.Description).
		Int("lines", int64(len(in.Session.Lines)))
	if in.Response != nil {
		body.Int("status", int64(in.Response.Status)).Raw("response", in.Response.Body)
	}
	body.End()
	req = abi.Request{Method: "POST", Path: "/echo/" + in.Session.Reference, Body: body.Bytes()}
	out.OK = true
	out.Request = &req
	return &out
}

func main() {}

package main

import (
	"encoding/json"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
)

// goldenDir holds the golden vectors. Rewrite their outputs from the native plugin with
// go test ./plugin/vippsecom -run Golden -update, and review the diff by eye before committing it.
const goldenDir = "testdata/golden"

// golden returns this plugin's golden-vector harness.
func golden() *plugintest.Golden {
	return &plugintest.Golden{Dir: goldenDir, Handle: ecom.Handle, Package: "./plugin/vippsecom", Name: ecom.Name, Version: ecom.Version}
}

// TestGoldenNative runs every golden vector through ecom.Handle natively.
func TestGoldenNative(t *testing.T) { golden().TestNative(t) }

// TestGoldenWasm runs every golden vector through the built module and requires the golden output, the
// same output as the native run, and byte-identical request bodies.
func TestGoldenWasm(t *testing.T) { golden().TestWasm(t) }

// TestGoldenCoverage checks that the vectors cover every operation, every callback status Vipps documents
// (including the ones only in the guide or in old specs), each error code this plugin reports, and both
// error shapes of the eCom API.
func TestGoldenCoverage(t *testing.T) {
	cases := golden().Cases(t)
	plugintest.RequireCoverage(t, cases, append(append(append([]abi.Op(nil), abi.Ops...), abi.ExpressOps...), abi.ReportOps...),
		[]string{ecom.CodeInvalidInput, ecom.CodeProviderError, ecom.CodeUnexpectedResponse, ecom.CodeCallbackMismatch, ecom.CodeUnsupportedOp})
	callbackStatuses := map[string]bool{}
	for _, c := range cases {
		if c.In.Op == abi.OpReadCallback && c.Out.OK {
			var cb struct {
				TransactionInfo struct {
					Status string `json:"status"`
				} `json:"transactionInfo"`
			}
			if err := json.Unmarshal(c.In.Callback, &cb); err != nil {
				t.Fatalf("%s: callback: %v", c.Name, err)
			}
			callbackStatuses[cb.TransactionInfo.Status] = true
		}
	}
	for _, s := range []string{"RESERVED", "RESERVE", "SALE", "CANCELLED", "REJECTED", "RESERVE_FAILED", "SALE_FAILED", "AUTO_CANCEL"} {
		if !callbackStatuses[s] {
			t.Errorf("no successful read_callback vector with status %s", s)
		}
	}
}

package main

import (
	"encoding/json"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
)

// goldenDir holds the golden vectors. Rewrite their outputs from the native plugin with
// go test ./plugin/vippsepayment -run Golden -update, and review the diff by eye before committing it.
const goldenDir = "testdata/golden"

// golden returns this plugin's golden-vector harness.
func golden() *plugintest.Golden {
	return &plugintest.Golden{Dir: goldenDir, Handle: epayment.Handle, Package: "./plugin/vippsepayment", Name: epayment.Name, Version: epayment.Version}
}

// TestGoldenNative runs every golden vector through epayment.Handle natively.
func TestGoldenNative(t *testing.T) { golden().TestNative(t) }

// TestGoldenWasm runs every golden vector through the built module and requires the golden output, the
// same output as the native run, and byte-identical request bodies.
func TestGoldenWasm(t *testing.T) { golden().TestWasm(t) }

// TestGoldenCoverage checks that the vectors cover every ABI operation and this plugin's extra ones, every
// ePayment state and webhook event name, and each error code this plugin reports.
func TestGoldenCoverage(t *testing.T) {
	cases := golden().Cases(t)
	plugintest.RequireCoverage(t, cases, append(append(append([]abi.Op{}, abi.Ops...), abi.ReportOps...), epayment.OpBuildEvents, epayment.OpReadEvents, epayment.OpBuildForceApprove),
		[]string{epayment.CodeInvalidInput, epayment.CodeProviderError, epayment.CodeUnexpectedResponse, epayment.CodeCallbackMismatch, epayment.CodeUnsupportedOp})
	states := map[string]bool{}
	events := map[string]bool{}
	for _, c := range cases {
		in := c.In
		if !c.Out.OK {
			continue
		}
		if in.Op == abi.OpReadCallback {
			var ev struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(in.Callback, &ev); err != nil {
				t.Fatalf("%s: event: %v", c.Name, err)
			}
			events[ev.Name] = true
		}
		if in.Op == abi.OpReadDetails && in.Response != nil {
			var st struct {
				State string `json:"state"`
			}
			if err := json.Unmarshal(in.Response.Body, &st); err != nil {
				t.Fatalf("%s: answer: %v", c.Name, err)
			}
			states[st.State] = true
		}
	}
	for _, s := range []string{"CREATED", "AUTHORIZED", "ABORTED", "EXPIRED", "TERMINATED"} {
		if !states[s] {
			t.Errorf("no successful read_details vector with state %s", s)
		}
	}
	for _, e := range []string{"CREATED", "AUTHORIZED", "ABORTED", "EXPIRED", "TERMINATED", "CAPTURED", "REFUNDED", "CANCELLED"} {
		if !events[e] {
			t.Errorf("no successful read_callback vector with event %s", e)
		}
	}
}

package vippsspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// # ePayment and Webhooks quirks
//
// epayment-v1.yaml (1.4.1) and webhooks-v1.swagger.yaml are loaded with these narrow patches, to the loaded
// copy only:
//
//   - CreatePaymentRequest.receipt refers to the Order Management API's Receipt on raw.githubusercontent.com;
//     no document is fetched from the network, so that reference resolves to a plain object schema.
//   - AdjustResponse (capture, refund, cancel) declares its ModificationResponse under
//     "application/problem+json" only; the API answers "application/json", which is added as an alias.
//   - PaymentEvent lists "paymentAction" as required, a property it does not have; the required property is
//     read as "name", which the event log always carries.
//   - Customer is a oneOf of CustomerPhoneNumber, PersonalQrCode and CustomerToken, none of which requires
//     its one property, so every customer object matches all three and fails oneOf; each requires its
//     property in the loaded copy.
//   - The Webhooks API's server URL ends in /webhooks and its paths start at /v1; the paths are moved under
//     /webhooks so that routes match the path a client sends.

// receiptStub stands in for the external Receipt schema.
const receiptStub = `openapi: 3.0.0
info: {title: Order Management API stub, version: 2.3.24}
paths: {}
components:
  schemas:
    Receipt:
      type: object
`

// readExternal serves files as kin-openapi does, and the Receipt stub for the one external document.
func readExternal(loader *openapi3.Loader, u *url.URL) ([]byte, error) {
	if u.Host == "raw.githubusercontent.com" {
		if strings.Contains(u.Path, "vipps-order-management-api") {
			return []byte(receiptStub), nil
		}
		return nil, fmt.Errorf("vippsspec: refusing to fetch %s", u.Redacted())
	}
	return openapi3.ReadFromFile(loader, u)
}

func (s *Specs) loadEPayment(dir string) error {
	var err error
	s.EPayment, s.epaymentRouter, err = loadDocWith(filepath.Join(dir, EPaymentFile), readExternal, func(doc *openapi3.T) {
		if r := doc.Components.Responses["AdjustResponse"]; r != nil && r.Value != nil {
			if mt := r.Value.Content["application/problem+json"]; mt != nil {
				r.Value.Content["application/json"] = mt
			}
		}
		for name, prop := range map[string]string{"CustomerPhoneNumber": "phoneNumber", "PersonalQrCode": "personalQr", "CustomerToken": "customerToken"} {
			if c := doc.Components.Schemas[name]; c != nil && c.Value != nil && len(c.Value.Required) == 0 {
				c.Value.Required = []string{prop}
			}
		}
		if ev := doc.Components.Schemas["PaymentEvent"]; ev != nil && ev.Value != nil {
			for i, name := range ev.Value.Required {
				if name == "paymentAction" {
					ev.Value.Required[i] = "name"
				}
			}
		}
	})
	if err != nil {
		return err
	}
	s.Webhooks, s.webhooksRouter, err = loadDocWith(filepath.Join(dir, WebhooksFile), nil, func(doc *openapi3.T) {
		moved := openapi3.NewPaths()
		for p, item := range doc.Paths.Map() {
			moved.Set("/webhooks"+p, item)
		}
		doc.Paths = moved
	})
	return err
}

// CheckWebhookEvent validates the body of an ePayment webhook delivery against the ePayment document's
// WebhookEvent schema.
func (s *Specs) CheckWebhookEvent(body []byte) error {
	ref := s.EPayment.Components.Schemas["WebhookEvent"]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("vippsspec: %s has no WebhookEvent schema", EPaymentFile)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("vippsspec: webhook event is not JSON: %w", err)
	}
	v = numbersToFloat(v)
	if err := ref.Value.VisitJSON(v); err != nil {
		return fmt.Errorf("vippsspec: webhook event violates WebhookEvent: %w", err)
	}
	return nil
}

// numbersToFloat turns json.Number values into float64, which VisitJSON expects.
func numbersToFloat(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = numbersToFloat(x)
		}
	case []any:
		for i, x := range t {
			t[i] = numbersToFloat(x)
		}
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return t.String()
		}
		return f
	}
	return v
}

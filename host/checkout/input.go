package checkout

import (
	"fmt"

	gojson "github.com/goccy/go-json"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// encodeInputFor encodes a plugin's input in the encoding of the module's ABI version: the binary one
// (abi.AppendBinary) for version 2, JSON (encodeInput) for version 1. The raw members must be one JSON
// value each, as the JSON encoding requires them to be: a guest reads them as JSON in either version.
func encodeInputFor(version int, in *abi.Input) ([]byte, error) {
	if version != abi.VersionBinary {
		return encodeInput(in)
	}
	if err := checkRaw(in.Callback); err != nil {
		return nil, fmt.Errorf("callback: %w", err)
	}
	body := responseBody(in)
	if err := checkRaw(body); err != nil {
		return nil, fmt.Errorf("response.body: %w", err)
	}
	// Room for the usual input (about 600 bytes with a few order lines) and the raw members: one allocation.
	return abi.AppendBinary(make([]byte, 0, 1024+len(in.Callback)+len(body)), in), nil
}

// checkRaw reports whether raw is empty (absent) or one JSON value, with sdk.Scanner, which is as strict
// as encoding/json.
func checkRaw(raw []byte) error {
	if len(raw) == 0 {
		return nil
	}
	var s sdk.Scanner
	s.Reset(raw)
	if err := s.Skip(); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := s.End(); err != nil {
		return fmt.Errorf("not one JSON value: %w", err)
	}
	return nil
}

// encodeInput encodes a plugin's input as JSON (ABI version 1): the same bytes as json.Marshal
// (TestEncodeInputMatchesEncodingJSON). It appends the fields with sdk.JSON, whose strings are escaped as encoding/json escapes them, in the
// order and with the omitempty rules of abi.Input's tags. A raw member (the callback, a response body) is
// copied as it is when it is valid JSON that encoding/json would write unchanged (compact, nothing to
// escape), which is how providers send them; any other input takes goccy/go-json, which compacts and
// escapes them as encoding/json does (and refuses invalid JSON).
func encodeInput(in *abi.Input) ([]byte, error) {
	if !rawAsIs(in.Callback) || in.Response != nil && !rawAsIs(in.Response.Body) {
		return gojson.Marshal(in)
	}
	var w sdk.JSON
	// Room for the usual input (about 1 KB with a few order lines) and the raw members: one allocation.
	w.Grow(1536 + len(in.Callback) + len(responseBody(in)))
	w.Obj().Str("op", string(in.Op))
	appendMerchant(&w, &in.Merchant)
	appendSession(&w, &in.Session)
	if op := in.Operation; op != nil {
		w.ObjField("operation").Int("amount", op.Amount).Str("text", op.Text).End()
	}
	if r := in.Response; r != nil {
		w.ObjField("response").Int("status", int64(r.Status))
		if len(r.Body) > 0 {
			w.Raw("body", r.Body)
		}
		w.End()
	}
	if len(in.Callback) > 0 {
		w.Raw("callback", in.Callback)
	}
	w.End()
	return w.Bytes(), nil
}

func appendMerchant(w *sdk.JSON, m *abi.Merchant) {
	w.ObjField("merchant").Str("id", m.ID).Str("merchantSerialNumber", m.MerchantSerialNumber).
		Str("callbackPrefix", m.CallbackPrefix).Str("fallBack", m.FallBack)
	if m.TransactionTextPrefix != "" {
		w.Str("transactionTextPrefix", m.TransactionTextPrefix)
	}
	if e := m.Express; e != nil {
		w.ObjField("express").Str("shippingDetailsPrefix", e.ShippingDetailsPrefix).
			Str("consentRemovalPrefix", e.ConsentRemovalPrefix).
			ObjField("shipping").Str("mode", e.Shipping.Mode)
		if e.Shipping.Methods == nil {
			w.Null("methods")
		} else {
			w.ArrField("methods")
			for i := range e.Shipping.Methods {
				appendMethod(w, &e.Shipping.Methods[i])
			}
			w.End()
		}
		if len(e.Shipping.Rules) > 0 {
			w.ArrField("rules")
			for i := range e.Shipping.Rules {
				appendRule(w, &e.Shipping.Rules[i])
			}
			w.End()
		}
		w.End().End()
	}
	w.End()
}

func appendMethod(w *sdk.JSON, m *abi.ShippingMethod) {
	w.Obj().Str("id", m.ID).Str("name", m.Name).Int("cost", m.Cost)
	if m.Default {
		w.Bool("default", true)
	}
	if m.PickupPoint {
		w.Bool("pickupPoint", true)
	}
	appendStrings(w, "countries", m.Countries)
	appendStrings(w, "postCodePrefixes", m.PostCodePrefixes)
	w.End()
}

func appendRule(w *sdk.JSON, r *abi.ShippingRule) {
	w.Obj()
	appendStrings(w, "methods", r.Methods)
	appendStrings(w, "countries", r.Countries)
	appendStrings(w, "postCodePrefixes", r.PostCodePrefixes)
	if r.MinAmount != 0 {
		w.Int("minAmount", r.MinAmount)
	}
	w.Int("cost", r.Cost).End()
}

// appendStrings writes an omitempty []string member.
func appendStrings(w *sdk.JSON, key string, list []string) {
	if len(list) == 0 {
		return
	}
	w.ArrField(key)
	for _, s := range list {
		w.StrElem(s)
	}
	w.End()
}

func appendSession(w *sdk.JSON, s *abi.Session) {
	w.ObjField("session").Str("id", s.ID).Str("reference", s.Reference).Str("providerReference", s.ProviderReference).
		Str("state", s.State).Int("amount", s.Amount).Str("currency", s.Currency).Str("description", s.Description)
	if s.CustomerPhone != "" {
		w.Str("customerPhone", s.CustomerPhone)
	}
	w.Int("authorizedAmount", s.AuthorizedAmount).Int("capturedAmount", s.CapturedAmount).
		Int("refundedAmount", s.RefundedAmount).Int("cancelledAmount", s.CancelledAmount)
	if len(s.Lines) > 0 {
		w.ArrField("lines")
		for i := range s.Lines {
			l := &s.Lines[i]
			w.Obj()
			if l.SKU != "" {
				w.Str("sku", l.SKU)
			}
			w.Str("name", l.Name).Int("quantity", l.Quantity).Int("unitPrice", l.UnitPrice).End()
		}
		w.End()
	}
	if s.UserFlow != "" {
		w.Str("userFlow", s.UserFlow)
	}
	w.End()
}

// rawAsIs reports whether encoding/json would write raw (a json.RawMessage member) byte for byte as it
// is: empty (the member is left out), or one valid JSON value (sdk.Scanner is as strict as encoding/json)
// with no white space between tokens and nothing in its strings that encoding/json escapes in a raw
// value ('<', '>', '&', U+2028, U+2029).
func rawAsIs(raw []byte) bool {
	if len(raw) == 0 {
		return true
	}
	inString := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case inString && c == '\\':
			i++ // the escaped byte cannot end the string; the Scanner checks the escape
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		case inString && (c == '<' || c == '>' || c == '&'):
			return false
		case inString && c == 0xe2 && i+2 < len(raw) && raw[i+1] == 0x80 && (raw[i+2] == 0xa8 || raw[i+2] == 0xa9):
			return false
		}
	}
	return checkRaw(raw) == nil
}

func responseBody(in *abi.Input) []byte {
	if in.Response == nil {
		return nil
	}
	return in.Response.Body
}

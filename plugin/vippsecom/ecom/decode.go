package ecom

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// Decoding of Vipps answers and callbacks with encoding/json (the hot-path bodies are read with sdk.Scanner
// first, see scan.go), with types that tolerate what vipps-reference.md §9 lists: numbers sent as strings and strings sent as numbers
// (merchantSerialNumber, errorCode), and amounts sent as 654.0.

// flexInt is an integer that may arrive as a JSON number (654 or 654.0) or as a string ("654").
type flexInt struct {
	// Set is true if the value was present and not null.
	Set bool
	// Whole is true if the value is a whole number that fits an int64; V holds it.
	Whole bool
	V     int64
	// Raw is the value as sent, for messages.
	Raw string
}

// UnmarshalJSON accepts null, a number or a string. A value that is not a whole number is kept with Whole
// false, so that a field nobody needs cannot fail a whole decode; other JSON types are an error.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	*f = flexInt{}
	switch {
	case len(b) == 0:
		return errors.New("empty value")
	case string(b) == "null":
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		f.Set, f.Raw = true, s
		f.V, f.Whole = parseWhole(strings.TrimSpace(s))
		return nil
	case b[0] == '-' || ('0' <= b[0] && b[0] <= '9'):
		f.Set, f.Raw = true, string(b)
		f.V, f.Whole = parseWhole(f.Raw)
		return nil
	}
	return errors.New("want a number, got " + clip(string(b), 20))
}

// parseWhole parses a decimal number that must have an integral value (e.g. "654", "654.0", "6.54e2").
func parseWhole(s string) (int64, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// amount returns the value if it is a whole, non-negative number.
func (f flexInt) amount() (int64, bool) { return f.V, f.Set && f.Whole && f.V >= 0 }

// flexString is a string that may arrive as a JSON number (merchantSerialNumber 123456, errorCode 45).
type flexString string

// UnmarshalJSON accepts null, a string or a number (kept as written); other JSON types are an error.
func (s *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
		return errors.New("empty value")
	case string(b) == "null":
		*s = ""
		return nil
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	case b[0] == '-' || ('0' <= b[0] && b[0] <= '9'):
		*s = flexString(b)
		return nil
	}
	return errors.New("want a string, got " + clip(string(b), 20))
}

// decodeObject decodes body, which must be one JSON object, into v.
func decodeObject(body []byte, v any) error {
	t := bytes.TrimLeft(body, " \t\r\n")
	if len(t) == 0 {
		return errors.New("empty body")
	}
	if t[0] != '{' {
		return errors.New("body is not a JSON object")
	}
	if err := json.Unmarshal(t, v); err != nil {
		return simplifyJSONError(err)
	}
	return nil
}

// simplifyJSONError keeps decode errors short and free of Go type names.
func simplifyJSONError(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return errors.New("invalid JSON at byte " + strconv.FormatInt(syn.Offset, 10))
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Type != nil {
		if typ.Field != "" {
			return errors.New(typ.Field + ": want " + jsonKind(typ.Type.Kind().String()) + ", got " + typ.Value)
		}
		return errors.New("want " + jsonKind(typ.Type.Kind().String()) + ", got " + typ.Value)
	}
	return err
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	}
	return "a number"
}

// summary is eCom's TransactionSummary (amounts in øre).
type summary struct {
	CapturedAmount           flexInt `json:"capturedAmount"`
	RefundedAmount           flexInt `json:"refundedAmount"`
	RemainingAmountToCapture flexInt `json:"remainingAmountToCapture"`
	RemainingAmountToRefund  flexInt `json:"remainingAmountToRefund"`
}

// amounts returns the captured and refunded amounts, or a problem if either is missing or not an amount.
func (s *summary) amounts() (captured, refunded int64, problem string) {
	captured, ok := s.CapturedAmount.amount()
	if !ok {
		return 0, 0, "transactionSummary.capturedAmount is missing or not an amount in øre"
	}
	refunded, ok = s.RefundedAmount.amount()
	if !ok {
		return 0, 0, "transactionSummary.refundedAmount is missing or not an amount in øre"
	}
	return captured, refunded, ""
}

// transactionInfo is eCom's TransactionInfo / TransactionInfoCancel.
type transactionInfo struct {
	Amount          flexInt    `json:"amount"`
	Status          string     `json:"status"`
	TimeStamp       string     `json:"timeStamp"`
	TransactionID   flexString `json:"transactionId"`
	TransactionText string     `json:"transactionText"`
}

// initiateResponse is PaymentInitiationResponse.
type initiateResponse struct {
	OrderID flexString `json:"orderId"`
	URL     string     `json:"url"`
}

// actionResponse is TransactionResponse (capture), CancelTransactionResponse (cancel) and
// RefundTransactionResponse (refund, whose transaction info is under "transaction").
type actionResponse struct {
	OrderID            flexString       `json:"orderId"`
	TransactionInfo    *transactionInfo `json:"transactionInfo"`
	Transaction        *transactionInfo `json:"transaction"`
	TransactionSummary *summary         `json:"transactionSummary"`
}

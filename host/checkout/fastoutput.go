package checkout

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// fastDecodeOutput reads a plugin's output in one pass into an abi.Output, applying checkOutput's rules
// as it goes, without building a tree of maps first and decoding a second time. It answers only when it
// is sure: it reports false for anything it would not read exactly as decodeOutput's general path does (a
// member the schema does not allow, a repeated member or one matching only ignoring case, a value of
// another type, a broken rule, invalid JSON, provider error entries, the Report API's outputs), and that
// path then decides and explains. So it never refuses what the general path accepts, and what it accepts
// the general path accepts with the same value (TestFastOutputMatchesGeneralPath).
//
// Strings and bodies are copied: the output stays independent of the buffer it was read from.
func fastDecodeOutput(raw []byte) (*abi.Output, bool) {
	r := outputReader{}
	r.s.Reset(raw)
	out, err := r.output()
	if err != nil || r.s.End() != nil {
		return nil, false
	}
	return out, true
}

// errSlowPath stops the fast reader; the value is never shown.
var errSlowPath = errors.New("checkout: output needs the general path")

// Member names of the objects the fast reader takes, in the order of the switches below.
var (
	rootNames     = []string{"ok", "error", "request", "payment", "reply"}
	errorNames    = []string{"code", "message", "providerStatus", "retryable"}
	requestNames  = []string{"method", "path", "body", "idempotencyHeader", "inject"}
	injectNames   = []string{"pointer", "value"}
	paymentNames  = []string{"state", "providerReference", "redirectUrl", "authorizedAmount", "capturedAmount", "refundedAmount", "cancelledAmount", "reason", "contact", "shipping"}
	contactNames  = []string{"userId", "firstName", "lastName", "email", "phoneNumber"}
	shippingNames = []string{"methodId", "method", "cost", "address"}
	addressNames  = []string{"line1", "line2", "postCode", "city", "country"}
	replyNames    = []string{"status", "body"}
)

// The string rules of checkOutput, as pass-or-fail functions (the reasons are the general path's to give).
var (
	codeRule     = matches(codePattern, "bad")
	pathRule     = matches(pathPattern, "bad")
	pointerRule  = matches(pointerPattern, "bad")
	methodRule   = oneOf("GET", "POST", "PUT", "DELETE")
	headerRule   = oneOf("X-Request-Id", "Idempotency-Key")
	injectRule   = oneOf(abi.InjectCallbackToken)
	stateRule    = oneOf(paymentStates...)
	nonEmptyRule = func(s string) string {
		if s == "" {
			return "empty"
		}
		return ""
	}
)

type outputReader struct{ s sdk.Scanner }

// str reads a string of at most maxLen characters that passes rule (when given), and copies it.
func (r *outputReader) str(maxLen int, rule func(string) string) (string, error) {
	v, err := r.s.String()
	switch {
	case err != nil:
		return "", err
	case len(v) > maxLen && utf8.RuneCountInString(v) > maxLen:
		return "", errSlowPath
	case rule != nil && rule(v) != "":
		return "", errSlowPath
	}
	return strings.Clone(v), nil
}

// integer reads an integer in [lo, hi] written in plain decimal digits.
func (r *outputReader) integer(lo, hi int64) (int64, error) {
	n, err := r.s.Number()
	if err != nil {
		return 0, err
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || i < lo || i > hi {
		return 0, errSlowPath
	}
	return i, nil
}

// object reads an object value as it is written, and copies it.
func (r *outputReader) object() ([]byte, error) {
	if r.s.Peek() != '{' {
		return nil, errSlowPath
	}
	v, err := r.s.Raw()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(v), nil
}

func (r *outputReader) output() (*abi.Output, error) {
	out := new(abi.Output)
	hasOK := false
	err := r.s.FieldsOnly(rootNames, func(i int) error {
		var err error
		switch i {
		case 0:
			out.OK, err = r.s.Bool()
			hasOK = true
		case 1:
			out.Error, err = r.error()
		case 2:
			out.Request, err = r.request()
		case 3:
			out.Payment, err = r.payment()
		case 4:
			out.Reply, err = r.reply()
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !hasOK, out.Request != nil && out.Payment != nil:
		return nil, errSlowPath
	case out.OK && (out.Error != nil || out.Request == nil && out.Payment == nil && out.Reply == nil):
		return nil, errSlowPath
	case !out.OK && (out.Error == nil || out.Request != nil || out.Payment != nil || out.Reply != nil):
		return nil, errSlowPath
	}
	return out, nil
}

func (r *outputReader) error() (*abi.Error, error) {
	e := new(abi.Error)
	var seen uint
	err := r.s.FieldsOnly(errorNames, func(i int) error {
		seen |= 1 << i
		var err error
		switch i {
		case 0:
			e.Code, err = r.str(1<<30, codeRule)
		case 1:
			e.Message, err = r.str(1000, nonEmptyRule)
		case 2:
			var n int64
			n, err = r.integer(100, 599)
			e.ProviderStatus = int(n)
		case 3:
			e.Retryable, err = r.s.Bool()
		}
		return err
	})
	if err == nil && seen&3 != 3 {
		err = errSlowPath
	}
	return e, err
}

func (r *outputReader) request() (*abi.Request, error) {
	q := new(abi.Request)
	var seen uint
	err := r.s.FieldsOnly(requestNames, func(i int) error {
		seen |= 1 << i
		var err error
		switch i {
		case 0:
			q.Method, err = r.str(1<<30, methodRule)
		case 1:
			q.Path, err = r.str(4096, pathRule)
		case 2:
			q.Body, err = r.object()
		case 3:
			q.IdempotencyHeader, err = r.str(1<<30, headerRule)
		case 4:
			q.Inject, err = r.inject()
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case seen&3 != 3, q.Method == "GET" && seen&4 != 0, seen&16 != 0 && seen&4 == 0:
		return nil, errSlowPath
	}
	return q, nil
}

func (r *outputReader) inject() ([]abi.Injection, error) {
	var list []abi.Injection
	err := r.s.Elements(func() error {
		if len(list) == 8 {
			return errSlowPath
		}
		var e abi.Injection
		var seen uint
		err := r.s.FieldsOnly(injectNames, func(i int) error {
			seen |= 1 << i
			var err error
			if i == 0 {
				e.Pointer, err = r.str(200, pointerRule)
			} else {
				e.Value, err = r.str(1<<30, injectRule)
			}
			return err
		})
		switch {
		case err != nil:
			return err
		case seen != 3:
			return errSlowPath
		}
		for _, o := range list {
			if o == e {
				return errSlowPath
			}
		}
		list = append(list, e)
		return nil
	})
	if err == nil && len(list) == 0 {
		err = errSlowPath
	}
	return list, err
}

func (r *outputReader) payment() (*abi.Payment, error) {
	p := new(abi.Payment)
	var seen uint
	err := r.s.FieldsOnly(paymentNames, func(i int) error {
		seen |= 1 << i
		var err error
		switch i {
		case 0:
			p.State, err = r.str(1<<30, stateRule)
		case 1:
			p.ProviderReference, err = r.str(100, nil)
		case 2:
			p.RedirectURL, err = r.str(4096, redirectRule)
		case 3:
			p.AuthorizedAmount, err = r.integer(-1, 65000000)
		case 4:
			p.CapturedAmount, err = r.integer(-1, 65000000)
		case 5:
			p.RefundedAmount, err = r.integer(-1, 65000000)
		case 6:
			p.CancelledAmount, err = r.integer(-1, 65000000)
		case 7:
			p.Reason, err = r.str(1000, nil)
		case 8:
			p.Contact, err = r.contact()
		case 9:
			p.Shipping, err = r.shipping()
		}
		return err
	})
	if err == nil && seen&0b1111001 != 0b1111001 { // state and the four amounts
		err = errSlowPath
	}
	return p, err
}

func (r *outputReader) contact() (*abi.Contact, error) {
	c := new(abi.Contact)
	err := r.s.FieldsOnly(contactNames, func(i int) error {
		var err error
		switch i {
		case 0:
			c.UserID, err = r.str(100, nil)
		case 1:
			c.FirstName, err = r.str(1000, nil)
		case 2:
			c.LastName, err = r.str(1000, nil)
		case 3:
			c.Email, err = r.str(1000, nil)
		case 4:
			c.PhoneNumber, err = r.str(1000, nil)
		}
		return err
	})
	return c, err
}

func (r *outputReader) shipping() (*abi.ShippingChoice, error) {
	c := new(abi.ShippingChoice)
	err := r.s.FieldsOnly(shippingNames, func(i int) error {
		var err error
		switch i {
		case 0:
			c.MethodID, err = r.str(100, nil)
		case 1:
			c.Method, err = r.str(1000, nil)
		case 2:
			c.Cost, err = r.integer(0, 65000000)
		case 3:
			c.Address, err = r.address()
		}
		return err
	})
	return c, err
}

func (r *outputReader) address() (*abi.Address, error) {
	a := new(abi.Address)
	err := r.s.FieldsOnly(addressNames, func(i int) error {
		var err error
		switch i {
		case 0:
			a.Line1, err = r.str(1000, nil)
		case 1:
			a.Line2, err = r.str(1000, nil)
		case 2:
			a.PostCode, err = r.str(20, nil)
		case 3:
			a.City, err = r.str(1000, nil)
		case 4:
			a.Country, err = r.str(1000, nil)
		}
		return err
	})
	return a, err
}

func (r *outputReader) reply() (*abi.Reply, error) {
	p := new(abi.Reply)
	hasStatus := false
	err := r.s.FieldsOnly(replyNames, func(i int) error {
		var err error
		if i == 0 {
			var n int64
			n, err = r.integer(200, 599)
			p.Status, hasStatus = int(n), true
		} else {
			p.Body, err = r.object()
		}
		return err
	})
	if err == nil && !hasStatus {
		err = errSlowPath
	}
	return p, err
}

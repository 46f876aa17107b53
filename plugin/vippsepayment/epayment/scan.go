package epayment

import (
	"encoding/json"

	"github.com/kassehq/kasse/plugin/sdk"
)

// Reading Vipps bodies on the hot path (webhook events, payment states) with sdk.Scanner instead of
// encoding/json: the reflection-driven decode was most of a read_callback or read_details call in the
// guest (BenchmarkPluginBoundary). Each read* function fills the same struct that decodeObject fills, and
// gives up (any error) on anything it would not read exactly as encoding/json does (a repeated member, a
// key in other case, a value of a type the field does not take, invalid JSON, anything after the object):
// decodeFast then decodes the body with encoding/json, so that every outcome, message included, is the one
// encoding/json gives. TestFastDecodeMatchesEncodingJSON and FuzzFastDecode hold the two together.

// decodeFast decodes body into v with read, or with decodeObject when read gives up.
func decodeFast[T any](body []byte, v *T, read func(*sdk.Scanner, *T) error) error {
	var s sdk.Scanner
	s.Reset(body)
	if readWithScanner && s.Peek() == '{' {
		if err := read(&s, v); err == nil && s.End() == nil {
			return nil
		}
	}
	var zero T
	*v = zero
	return decodeObject(body, v)
}

// scanString reads a string field: a string, or null (which leaves it as it is).
func scanString(s *sdk.Scanner, dst *string) error {
	switch s.Peek() {
	case '"':
		v, err := s.String()
		*dst = v
		return err
	case 'n':
		_, err := s.Null()
		return err
	}
	return sdk.ErrUnlike
}

var amountFields = []string{"currency", "value"}

func readAmount(s *sdk.Scanner, a *amount) error {
	return s.Fields(amountFields, func(i int) error {
		if i == 0 {
			return scanString(s, &a.Currency)
		}
		switch c := s.Peek(); {
		case c == 'n':
			_, err := s.Null()
			return err
		case c == '-' || '0' <= c && c <= '9':
			n, err := s.NumberString()
			a.Value = json.Number(n)
			return err
		}
		return sdk.ErrUnlike // a string is a json.Number too when it holds one: encoding/json decides
	})
}

// scanAmount reads a *amount field: an object, or null (nil).
func scanAmount(s *sdk.Scanner, dst **amount) error {
	switch s.Peek() {
	case '{':
		*dst = new(amount)
		return readAmount(s, *dst)
	case 'n':
		*dst = nil
		_, err := s.Null()
		return err
	}
	return sdk.ErrUnlike
}

var aggregateFields = []string{"authorizedAmount", "cancelledAmount", "capturedAmount", "refundedAmount"}

func readAggregate(s *sdk.Scanner, a *aggregate) error {
	return s.Fields(aggregateFields, func(i int) error {
		switch i {
		case 0:
			return scanAmount(s, &a.Authorized)
		case 1:
			return scanAmount(s, &a.Cancelled)
		case 2:
			return scanAmount(s, &a.Captured)
		}
		return scanAmount(s, &a.Refunded)
	})
}

var paymentStateFields = []string{"aggregate", "amount", "state", "pspReference", "reference"}

func readPaymentState(s *sdk.Scanner, p *paymentState) error {
	return s.Fields(paymentStateFields, func(i int) error {
		switch i {
		case 0:
			switch s.Peek() {
			case '{':
				p.Aggregate = new(aggregate)
				return readAggregate(s, p.Aggregate)
			case 'n':
				p.Aggregate = nil
				_, err := s.Null()
				return err
			}
			return sdk.ErrUnlike
		case 1:
			return scanAmount(s, &p.Amount)
		case 2:
			return scanString(s, &p.State)
		case 3:
			return scanString(s, &p.PspReference)
		}
		return scanString(s, &p.Reference)
	})
}

var eventFields = []string{"msn", "reference", "pspReference", "name", "amount", "timestamp", "idempotencyKey", "success"}

func readEvent(s *sdk.Scanner, e *event) error {
	return s.Fields(eventFields, func(i int) error {
		switch i {
		case 0:
			raw, err := s.Raw() // encoding/json hands json.RawMessage any value, null included
			e.MSN = raw
			return err
		case 1:
			return scanString(s, &e.Reference)
		case 2:
			return scanString(s, &e.PspReference)
		case 3:
			return scanString(s, &e.Name)
		case 4:
			return scanAmount(s, &e.Amount)
		case 5:
			return scanString(s, &e.Timestamp)
		case 6:
			switch s.Peek() {
			case '"':
				v, err := s.String()
				e.IdempotencyKey = &v
				return err
			case 'n':
				e.IdempotencyKey = nil
				_, err := s.Null()
				return err
			}
			return sdk.ErrUnlike
		}
		switch s.Peek() {
		case 't', 'f':
			v, err := s.Bool()
			e.Success = &v
			return err
		case 'n':
			e.Success = nil
			_, err := s.Null()
			return err
		}
		return sdk.ErrUnlike
	})
}

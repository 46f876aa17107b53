package epayment

import (
	"encoding/json"

	"github.com/kassehq/kasse/plugin/sdk"
)

// Reading Vipps bodies on the hot path (webhook events, payment states, the answer to create payment) with sdk.Scanner instead of
// encoding/json: the reflection-driven decode was most of a read_callback or read_details call in the
// guest (BenchmarkPluginBoundary). Each read* function fills the same struct that decodeObject fills, and
// gives up (any error) on anything it would not read exactly as encoding/json does (a repeated member, a
// key in other case, a value of a type the field does not take, invalid JSON, anything after the object):
// decodeFast then decodes the body with encoding/json, so that every outcome, message included, is the one
// encoding/json gives. TestFastDecodeMatchesEncodingJSON and FuzzFastDecode hold the two together.

// decodeFast decodes body into v with read, or with decodeObject when read gives up (sdk.ReadObject).
func decodeFast[T any](body []byte, v *T, read func(*sdk.Scanner, *T) error) error {
	if !readWithScanner {
		read = nil
	}
	return sdk.ReadObject(body, v, read, func(b []byte, v *T) error { return decodeObject(b, v) })
}

var amountFields = []string{"currency", "value"}

func readAmount(s *sdk.Scanner, a *amount) error {
	return s.Fields(amountFields, func(i int) error {
		if i == 0 {
			return s.StringInto(&a.Currency)
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
func scanAmount(s *sdk.Scanner, dst **amount) error { return scanAmountIn(s, dst, nil) }

// scanAmountIn is scanAmount reading an object into mem, when given, instead of a new amount: a caller
// reading several allocates them together (an allocation costs about a microsecond in the guest).
func scanAmountIn(s *sdk.Scanner, dst **amount, mem *amount) error {
	switch s.Peek() {
	case '{':
		if mem == nil {
			mem = new(amount)
		}
		*dst = mem
		return readAmount(s, mem)
	case 'n':
		*dst = nil
		_, err := s.Null()
		return err
	}
	return sdk.ErrUnlike
}

var aggregateFields = []string{"authorizedAmount", "cancelledAmount", "capturedAmount", "refundedAmount"}

// aggregateStore holds an aggregate and its four amounts, allocated together, and the payment state's
// own amount.
type aggregateStore struct {
	agg     aggregate
	amounts [4]amount
	amount  amount
}

func readAggregate(s *sdk.Scanner, st *aggregateStore) error {
	a := &st.agg
	return s.Fields(aggregateFields, func(i int) error {
		switch i {
		case 0:
			return scanAmountIn(s, &a.Authorized, &st.amounts[0])
		case 1:
			return scanAmountIn(s, &a.Cancelled, &st.amounts[1])
		case 2:
			return scanAmountIn(s, &a.Captured, &st.amounts[2])
		}
		return scanAmountIn(s, &a.Refunded, &st.amounts[3])
	})
}

var paymentStateFields = []string{"aggregate", "amount", "state", "pspReference", "reference"}

func readPaymentState(s *sdk.Scanner, p *paymentState) error {
	var st *aggregateStore // allocated at the first member that needs it
	store := func() *aggregateStore {
		if st == nil {
			st = new(aggregateStore)
		}
		return st
	}
	return s.Fields(paymentStateFields, func(i int) error {
		switch i {
		case 0:
			switch s.Peek() {
			case '{':
				st := store()
				p.Aggregate = &st.agg
				return readAggregate(s, st)
			case 'n':
				p.Aggregate = nil
				_, err := s.Null()
				return err
			}
			return sdk.ErrUnlike
		case 1:
			if s.Peek() == '{' {
				return scanAmountIn(s, &p.Amount, &store().amount)
			}
			return scanAmount(s, &p.Amount)
		case 2:
			return s.StringInto(&p.State)
		case 3:
			return s.StringInto(&p.PspReference)
		}
		return s.StringInto(&p.Reference)
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
			return s.StringInto(&e.Reference)
		case 2:
			return s.StringInto(&e.PspReference)
		case 3:
			return s.StringInto(&e.Name)
		case 4:
			return scanAmount(s, &e.Amount)
		case 5:
			return s.StringInto(&e.Timestamp)
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

var createResponseFields = []string{"redirectUrl", "reference"}

func readCreateResponse(s *sdk.Scanner, r *createResponse) error {
	return s.Fields(createResponseFields, func(i int) error {
		if i == 0 {
			return s.StringInto(&r.RedirectURL)
		}
		return s.StringInto(&r.Reference)
	})
}

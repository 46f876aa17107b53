package ecom

import (
	"strconv"
	"strings"

	"github.com/kassehq/kasse/plugin/sdk"
)

// Reading Vipps bodies on the hot path (callbacks, details, shipping questions, the answers to initiate,
// capture, refund and cancel) with sdk.Scanner instead of
// encoding/json: the reflection-driven decode was 80-90% of a read_callback or read_details call in the
// guest (BenchmarkPluginBoundary). Each read* function fills the same struct that decodeObject fills, and
// gives up (any error) on anything it would not read exactly as encoding/json does (a repeated member, a
// key in other case, a value of a type the field does not take, invalid JSON): decodeFast then decodes the
// body with encoding/json, so that every outcome, message included, is the one encoding/json gives.
// TestFastDecodeMatchesEncodingJSON and FuzzFastDecode hold the two together.

// decodeFast decodes body into v with read, or with decodeObject when read gives up (sdk.ReadObject).
func decodeFast[T any](body []byte, v *T, read func(*sdk.Scanner, *T) error) error {
	if !readWithScanner {
		read = nil
	}
	return sdk.ReadObject(body, v, read, func(b []byte, v *T) error { return decodeObject(b, v) })
}

func isNumberStart(c byte) bool { return c == '-' || '0' <= c && c <= '9' }

// scanFlexString reads what flexString.UnmarshalJSON accepts.
func scanFlexString(s *sdk.Scanner, dst *flexString) error {
	switch c := s.Peek(); {
	case c == '"':
		v, err := s.String()
		*dst = flexString(v)
		return err
	case c == 'n':
		*dst = ""
		_, err := s.Null()
		return err
	case isNumberStart(c):
		n, err := s.NumberString()
		*dst = flexString(n)
		return err
	}
	return sdk.ErrUnlike
}

// scanFlexInt reads what flexInt.UnmarshalJSON accepts.
func scanFlexInt(s *sdk.Scanner, dst *flexInt) error {
	*dst = flexInt{}
	switch c := s.Peek(); {
	case c == '"':
		v, err := s.String()
		dst.Set, dst.Raw = true, v
		dst.V, dst.Whole = parseWhole(strings.TrimSpace(v))
		return err
	case c == 'n':
		_, err := s.Null()
		return err
	case isNumberStart(c):
		n, err := s.NumberString()
		dst.Set, dst.Raw = true, n
		dst.V, dst.Whole = parseWhole(dst.Raw)
		return err
	}
	return sdk.ErrUnlike
}

var callbackFields = []string{"merchantSerialNumber", "orderId", "transactionInfo", "errorInfo", "shippingDetails", "userDetails"}

// bodyMembers holds the objects a callback or details body points to, allocated together (an allocation
// costs about a microsecond in the guest, and lets its garbage collector assist within the call): an
// express callback has five of them.
type bodyMembers struct {
	transaction callbackTransaction
	errorInfo   vippsError
	summary     summary
	shipping    shippingDetailsBody
	address     addressBody
	user        userDetailsBody
	cost        float64
}

func readCallbackBody(s *sdk.Scanner, c *callback) error {
	mem := new(bodyMembers)
	return s.Fields(callbackFields, func(i int) error {
		switch i {
		case 0:
			return scanFlexString(s, &c.MerchantSerialNumber)
		case 1:
			return scanFlexString(s, &c.OrderID)
		case 2:
			return sdk.ObjectIn(s, &c.TransactionInfo, &mem.transaction, readCallbackTransaction)
		case 3:
			return sdk.ObjectIn(s, &c.ErrorInfo, &mem.errorInfo, readVippsError)
		}
		return c.expressDetails.field(s, i-4, mem)
	})
}

type callbackTransaction = struct {
	Amount        flexInt    `json:"amount"`
	Status        string     `json:"status"`
	TimeStamp     string     `json:"timeStamp"`
	TransactionID flexString `json:"transactionId"`
}

var callbackTransactionFields = []string{"amount", "status", "timeStamp", "transactionId"}

func readCallbackTransaction(s *sdk.Scanner, t *callbackTransaction) error {
	return s.Fields(callbackTransactionFields, func(i int) error {
		switch i {
		case 0:
			return scanFlexInt(s, &t.Amount)
		case 1:
			return s.StringInto(&t.Status)
		case 2:
			return s.StringInto(&t.TimeStamp)
		}
		return scanFlexString(s, &t.TransactionID)
	})
}

var vippsErrorFields = []string{"errorGroup", "errorCode", "errorMessage", "contextId"}

func readVippsError(s *sdk.Scanner, e *vippsError) error {
	return s.Fields(vippsErrorFields, func(i int) error {
		switch i {
		case 0:
			return scanFlexString(s, &e.ErrorGroup)
		case 1:
			return scanFlexString(s, &e.ErrorCode)
		case 2:
			return scanFlexString(s, &e.ErrorMessage)
		}
		return scanFlexString(s, &e.ContextID)
	})
}

// field reads member i of expressDetails (0 shippingDetails, 1 userDetails) into mem's objects.
func (d *expressDetails) field(s *sdk.Scanner, i int, mem *bodyMembers) error {
	if i == 0 {
		return sdk.ObjectIn(s, &d.ShippingDetails, &mem.shipping, mem.readShippingDetails)
	}
	return sdk.ObjectIn(s, &d.UserDetails, &mem.user, readUserDetails)
}

var shippingDetailsFields = []string{"address", "shippingCost", "shippingMethod", "shippingMethodId"}

// readShippingDetails reads a shippingDetails object, its address and cost into m's.
func (m *bodyMembers) readShippingDetails(s *sdk.Scanner, d *shippingDetailsBody) error {
	return s.Fields(shippingDetailsFields, func(i int) error {
		switch i {
		case 0:
			return sdk.ObjectIn(s, &d.Address, &m.address, readAddress)
		case 1:
			switch c := s.Peek(); {
			case c == 'n':
				d.ShippingCost = nil
				_, err := s.Null()
				return err
			case isNumberStart(c):
				n, err := s.Number()
				if err != nil {
					return err
				}
				f, err := strconv.ParseFloat(string(n), 64)
				if err != nil {
					return sdk.ErrUnlike
				}
				m.cost = f
				d.ShippingCost = &m.cost
				return nil
			}
			return sdk.ErrUnlike
		case 2:
			return scanFlexString(s, &d.ShippingMethod)
		}
		return scanFlexString(s, &d.ShippingMethodID)
	})
}

var addressFields = []string{"addressLine1", "addressLine2", "city", "country", "zipCode", "postCode"}

func readAddress(s *sdk.Scanner, a *addressBody) error {
	return s.Fields(addressFields, func(i int) error {
		switch i {
		case 0:
			return scanFlexString(s, &a.AddressLine1)
		case 1:
			return scanFlexString(s, &a.AddressLine2)
		case 2:
			return scanFlexString(s, &a.City)
		case 3:
			return scanFlexString(s, &a.Country)
		case 4:
			return scanFlexString(s, &a.ZipCode)
		}
		return scanFlexString(s, &a.PostCode)
	})
}

type userDetailsBody = struct {
	UserID       flexString `json:"userId"`
	FirstName    flexString `json:"firstName"`
	LastName     flexString `json:"lastName"`
	Email        flexString `json:"email"`
	MobileNumber flexString `json:"mobileNumber"`
}

var userDetailsFields = []string{"userId", "firstName", "lastName", "email", "mobileNumber"}

func readUserDetails(s *sdk.Scanner, u *userDetailsBody) error {
	return s.Fields(userDetailsFields, func(i int) error {
		switch i {
		case 0:
			return scanFlexString(s, &u.UserID)
		case 1:
			return scanFlexString(s, &u.FirstName)
		case 2:
			return scanFlexString(s, &u.LastName)
		case 3:
			return scanFlexString(s, &u.Email)
		}
		return scanFlexString(s, &u.MobileNumber)
	})
}

var detailsFields = []string{"orderId", "transactionLogHistory", "transactionSummary", "shippingDetails", "userDetails"}

func readDetailsBody(s *sdk.Scanner, d *transactionDetails) error {
	mem := new(bodyMembers)
	return s.Fields(detailsFields, func(i int) error {
		switch i {
		case 0:
			return scanFlexString(s, &d.OrderID)
		case 1:
			switch s.Peek() {
			case 'n':
				d.TransactionLogHistory = nil
				_, err := s.Null()
				return err
			case '[':
				d.TransactionLogHistory = make([]logEntry, 0, 4)
				return s.Elements(func() error {
					d.TransactionLogHistory = append(d.TransactionLogHistory, logEntry{})
					e := &d.TransactionLogHistory[len(d.TransactionLogHistory)-1]
					switch s.Peek() {
					case '{':
						return readLogEntry(s, e)
					case 'n':
						_, err := s.Null()
						return err
					}
					return sdk.ErrUnlike
				})
			}
			return sdk.ErrUnlike
		case 2:
			return sdk.ObjectIn(s, &d.TransactionSummary, &mem.summary, readSummary)
		}
		return d.expressDetails.field(s, i-3, mem)
	})
}

var logEntryFields = []string{"amount", "operation", "operationSuccess", "requestId", "timeStamp", "transactionId"}

func readLogEntry(s *sdk.Scanner, e *logEntry) error {
	return s.Fields(logEntryFields, func(i int) error {
		switch i {
		case 0:
			return scanFlexInt(s, &e.Amount)
		case 1:
			return s.StringInto(&e.Operation)
		case 2:
			return s.BoolInto(&e.OperationSuccess)
		case 3:
			return scanFlexString(s, &e.RequestID)
		case 4:
			return s.StringInto(&e.TimeStamp)
		}
		return scanFlexString(s, &e.TransactionID)
	})
}

var summaryFields = []string{"capturedAmount", "refundedAmount", "remainingAmountToCapture", "remainingAmountToRefund"}

func readSummary(s *sdk.Scanner, m *summary) error {
	return s.Fields(summaryFields, func(i int) error {
		switch i {
		case 0:
			return scanFlexInt(s, &m.CapturedAmount)
		case 1:
			return scanFlexInt(s, &m.RefundedAmount)
		case 2:
			return scanFlexInt(s, &m.RemainingAmountToCapture)
		}
		return scanFlexInt(s, &m.RemainingAmountToRefund)
	})
}

var shippingRequestFields = []string{"addressId", "addressLine1", "addressLine2", "city", "country", "postCode", "zipCode"}

func readShippingRequest(s *sdk.Scanner, r *shippingRequest) error {
	return s.Fields(shippingRequestFields, func(i int) error {
		switch i {
		case 0:
			return scanFlexInt(s, &r.AddressID)
		case 1:
			return scanFlexString(s, &r.AddressLine1)
		case 2:
			return scanFlexString(s, &r.AddressLine2)
		case 3:
			return scanFlexString(s, &r.City)
		case 4:
			return scanFlexString(s, &r.Country)
		case 5:
			return scanFlexString(s, &r.PostCode)
		}
		return scanFlexString(s, &r.ZipCode)
	})
}

var initiateFields = []string{"orderId", "url"}

func readInitiateBody(s *sdk.Scanner, r *initiateResponse) error {
	return s.Fields(initiateFields, func(i int) error {
		if i == 0 {
			return scanFlexString(s, &r.OrderID)
		}
		return s.StringInto(&r.URL)
	})
}

var actionFields = []string{"orderId", "transactionInfo", "transaction", "transactionSummary"}

// actionMembers holds the objects an actionResponse points to, allocated together: an answer to a
// capture, refund or cancel has two of them.
type actionMembers struct {
	transactionInfo, transaction transactionInfo
	summary                      summary
}

func readActionBody(s *sdk.Scanner, r *actionResponse) error {
	mem := new(actionMembers)
	return s.Fields(actionFields, func(i int) error {
		switch i {
		case 0:
			return scanFlexString(s, &r.OrderID)
		case 1:
			return sdk.ObjectIn(s, &r.TransactionInfo, &mem.transactionInfo, readTransactionInfo)
		case 2:
			return sdk.ObjectIn(s, &r.Transaction, &mem.transaction, readTransactionInfo)
		}
		return sdk.ObjectIn(s, &r.TransactionSummary, &mem.summary, readSummary)
	})
}

var transactionInfoFields = []string{"amount", "status", "timeStamp", "transactionId", "transactionText"}

func readTransactionInfo(s *sdk.Scanner, t *transactionInfo) error {
	return s.Fields(transactionInfoFields, func(i int) error {
		switch i {
		case 0:
			return scanFlexInt(s, &t.Amount)
		case 1:
			return s.StringInto(&t.Status)
		case 2:
			return s.StringInto(&t.TimeStamp)
		case 3:
			return scanFlexString(s, &t.TransactionID)
		}
		return s.StringInto(&t.TransactionText)
	})
}

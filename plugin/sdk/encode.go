package sdk

import (
	"github.com/kassehq/kasse/plugin/abi"
)

// appendOutput appends o as JSON. The result equals json.Marshal(o) as a value (byte for byte, except that
// json.RawMessage fields are written as given instead of compacted); RawMessage fields are not validated
// here, the host rejects an output that is not valid JSON.
func appendOutput(b []byte, o *abi.Output) []byte {
	b = append(b, `{"ok":`...)
	b = appendBool(b, o.OK)
	if e := o.Error; e != nil {
		b = append(b, `,"error":{"code":`...)
		b = appendString(b, e.Code)
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
		if e.ProviderStatus != 0 {
			b = append(b, `,"providerStatus":`...)
			b = appendInt(b, int64(e.ProviderStatus))
		}
		if len(e.ProviderErrors) > 0 {
			b = append(b, `,"providerErrors":[`...)
			for i := range e.ProviderErrors {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendProviderError(b, &e.ProviderErrors[i])
			}
			b = append(b, ']')
		}
		if e.Retryable {
			b = append(b, `,"retryable":true`...)
		}
		b = append(b, '}')
	}
	if r := o.Request; r != nil {
		b = append(b, `,"request":{"method":`...)
		b = appendString(b, r.Method)
		b = append(b, `,"path":`...)
		b = appendString(b, r.Path)
		if len(r.Body) > 0 {
			b = append(b, `,"body":`...)
			b = append(b, r.Body...)
		}
		if r.IdempotencyHeader != "" {
			b = append(b, `,"idempotencyHeader":`...)
			b = appendString(b, r.IdempotencyHeader)
		}
		if len(r.Inject) > 0 {
			b = append(b, `,"inject":[`...)
			for i := range r.Inject {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"pointer":`...)
				b = appendString(b, r.Inject[i].Pointer)
				b = append(b, `,"value":`...)
				b = appendString(b, r.Inject[i].Value)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if p := o.Payment; p != nil {
		b = append(b, `,"payment":{"state":`...)
		b = appendString(b, p.State)
		if p.ProviderReference != "" {
			b = append(b, `,"providerReference":`...)
			b = appendString(b, p.ProviderReference)
		}
		if p.RedirectURL != "" {
			b = append(b, `,"redirectUrl":`...)
			b = appendString(b, p.RedirectURL)
		}
		b = append(b, `,"authorizedAmount":`...)
		b = appendInt(b, p.AuthorizedAmount)
		b = append(b, `,"capturedAmount":`...)
		b = appendInt(b, p.CapturedAmount)
		b = append(b, `,"refundedAmount":`...)
		b = appendInt(b, p.RefundedAmount)
		b = append(b, `,"cancelledAmount":`...)
		b = appendInt(b, p.CancelledAmount)
		if p.Reason != "" {
			b = append(b, `,"reason":`...)
			b = appendString(b, p.Reason)
		}
		if c := p.Contact; c != nil {
			b = append(b, `,"contact":`...)
			b = appendContact(b, c)
		}
		if sh := p.Shipping; sh != nil {
			b = append(b, `,"shipping":`...)
			b = appendShippingChoice(b, sh)
		}
		b = append(b, '}')
	}
	if r := o.Reply; r != nil {
		b = append(b, `,"reply":{"status":`...)
		b = appendInt(b, int64(r.Status))
		if len(r.Body) > 0 {
			b = append(b, `,"body":`...)
			b = append(b, r.Body...)
		}
		b = append(b, '}')
	}
	if l := o.Ledgers; l != nil {
		b = append(b, `,"ledgers":`...)
		b = appendLedgerList(b, l)
	}
	if r := o.Report; r != nil {
		b = append(b, `,"report":`...)
		b = appendReportPage(b, r)
	}
	return append(b, '}')
}

func appendLedgerList(b []byte, l *abi.LedgerList) []byte {
	b = append(b, `{"ledgers":`...)
	if l.Ledgers == nil {
		b = append(b, `null`...)
	} else {
		b = append(b, '[')
		for i := range l.Ledgers {
			if i > 0 {
				b = append(b, ',')
			}
			g := &l.Ledgers[i]
			b = append(b, `{"ledgerId":`...)
			b = appendString(b, g.LedgerID)
			b = appendOptional(b, 0, "currency", g.Currency)
			b = appendOptional(b, 0, "payoutBankAccount", g.PayoutBankAccount)
			if len(g.RecipientHandles) > 0 {
				b = append(b, `,"recipientHandles":[`...)
				for j, h := range g.RecipientHandles {
					if j > 0 {
						b = append(b, ',')
					}
					b = appendString(b, h)
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendOptional(b, 0, "cursor", l.Cursor)
	return append(b, '}')
}

func appendReportPage(b []byte, r *abi.ReportPage) []byte {
	b = append(b, `{"ledgerId":`...)
	b = appendString(b, r.LedgerID)
	b = append(b, `,"topic":`...)
	b = appendString(b, r.Topic)
	b = appendOptional(b, 0, "date", r.Date)
	b = append(b, `,"entries":`...)
	if r.Entries == nil {
		b = append(b, `null`...)
	} else {
		b = append(b, '[')
		for i := range r.Entries {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendLedgerEntry(b, &r.Entries[i])
		}
		b = append(b, ']')
	}
	b = appendOptional(b, 0, "cursor", r.Cursor)
	if r.HasMore {
		b = append(b, `,"hasMore":true`...)
	}
	if r.TryLater {
		b = append(b, `,"tryLater":true`...)
	}
	return append(b, '}')
}

func appendLedgerEntry(b []byte, e *abi.LedgerEntry) []byte {
	b = append(b, `{"entryType":`...)
	b = appendString(b, e.EntryType)
	b = append(b, `,"amount":`...)
	b = appendInt(b, e.Amount)
	b = appendOptional(b, 0, "currency", e.Currency)
	b = appendOptional(b, 0, "reference", e.Reference)
	b = appendOptional(b, 0, "pspReference", e.PSPReference)
	b = appendOptional(b, 0, "time", e.Time)
	b = appendOptional(b, 0, "ledgerDate", e.LedgerDate)
	b = appendOptional(b, 0, "recipientHandle", e.RecipientHandle)
	b = append(b, `,"balanceBefore":`...)
	b = appendInt(b, e.BalanceBefore)
	b = append(b, `,"balanceAfter":`...)
	b = appendInt(b, e.BalanceAfter)
	return append(b, '}')
}

// appendOptional appends the member `"key":"v"` of an object whose string members are omitempty, unless v
// is empty; open is the length of b right after the object's '{'.
func appendOptional(b []byte, open int, key, v string) []byte {
	if v == "" {
		return b
	}
	if len(b) > open {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendContact(b []byte, c *abi.Contact) []byte {
	b = append(b, '{')
	open := len(b)
	b = appendOptional(b, open, "userId", c.UserID)
	b = appendOptional(b, open, "firstName", c.FirstName)
	b = appendOptional(b, open, "lastName", c.LastName)
	b = appendOptional(b, open, "email", c.Email)
	b = appendOptional(b, open, "phoneNumber", c.PhoneNumber)
	return append(b, '}')
}

func appendShippingChoice(b []byte, sc *abi.ShippingChoice) []byte {
	b = append(b, '{')
	open := len(b)
	b = appendOptional(b, open, "methodId", sc.MethodID)
	b = appendOptional(b, open, "method", sc.Method)
	if len(b) > open {
		b = append(b, ',')
	}
	b = append(b, `"cost":`...)
	b = appendInt(b, sc.Cost)
	if a := sc.Address; a != nil {
		b = append(b, `,"address":{`...)
		open := len(b)
		b = appendOptional(b, open, "line1", a.Line1)
		b = appendOptional(b, open, "line2", a.Line2)
		b = appendOptional(b, open, "postCode", a.PostCode)
		b = appendOptional(b, open, "city", a.City)
		b = appendOptional(b, open, "country", a.Country)
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendProviderError(b []byte, e *abi.ProviderError) []byte {
	b = append(b, '{')
	open := len(b)
	b = appendOptional(b, open, "group", e.Group)
	b = appendOptional(b, open, "code", e.Code)
	b = appendOptional(b, open, "message", e.Message)
	return append(b, '}')
}

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendInt appends v in decimal, as strconv.AppendInt(b, v, 10) does, two digits per step.
func appendInt(b []byte, v int64) []byte {
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		u = -u
	}
	if u < 10 {
		return append(b, byte('0'+u))
	}
	var buf [20]byte
	i := len(buf)
	for u >= 100 {
		q := u / 100
		r := (u - q*100) * 2
		i -= 2
		buf[i], buf[i+1] = digitPairs[r], digitPairs[r+1]
		u = q
	}
	if u >= 10 {
		i -= 2
		buf[i], buf[i+1] = digitPairs[u*2], digitPairs[u*2+1]
	} else {
		i--
		buf[i] = byte('0' + u)
	}
	return append(b, buf[i:]...)
}

package ecom

import (
	"math"
	"strconv"

	"github.com/kassehq/kasse/plugin/abi"
)

// logEntry is one item of TransactionDetails.transactionLogHistory.
type logEntry struct {
	Amount           flexInt    `json:"amount"`
	Operation        string     `json:"operation"`
	OperationSuccess bool       `json:"operationSuccess"`
	RequestID        flexString `json:"requestId"`
	TimeStamp        string     `json:"timeStamp"`
	TransactionID    flexString `json:"transactionId"`
}

// transactionDetails is eCom's TransactionDetails (GET /ecomm/v2/payments/{orderId}/details). Express
// shippingDetails and userDetails become the payment's contact and shipping, so that an Express order
// whose one callback was lost still gets its address from the poll.
type transactionDetails struct {
	OrderID               flexString `json:"orderId"`
	TransactionLogHistory []logEntry `json:"transactionLogHistory"`
	TransactionSummary    *summary   `json:"transactionSummary"`
	expressDetails
}

// readDetails reads TransactionDetails. Only log entries with operationSuccess true count (eCom API guide:
// "always check operationSuccess"); the log is newest first:
//
//   - RESERVE: authorized for its amount; SALE (direct capture): authorized and captured;
//   - CAPTURE and REFUND: their amounts add up to captured and refunded;
//   - VOID (merchant cancel after approval), or CANCEL after a RESERVE: cancelled, releasing whatever was
//     not captured;
//   - CANCEL with no RESERVE: rejected (the customer cancelled, or the merchant cancelled before approval,
//     in which case the host has already recorded its own cancel and keeps it);
//   - a failed RESERVE or SALE and nothing else: failed;
//   - only INITIATE: pending.
//
// transactionSummary, absent until the customer has acted, wins over the log for captured and refunded.
func readDetails(in *abi.Input) *abi.Output {
	id, bad := orderID(in)
	if bad != nil {
		return bad
	}
	body, out := answer(in)
	if out != nil {
		return out
	}
	var d transactionDetails
	if err := decodeFast(body, &d, readDetailsBody); err != nil {
		return unexpected(in, "details", err.Error())
	}
	if d.OrderID != "" {
		if p := checkOrderID(d.OrderID, id); p != "" {
			return unexpected(in, "details", p)
		}
	}

	var (
		authorized, sale            int64 = -1, -1
		captured, refunded          int64
		voided, cancelled, failedOp bool
	)
	for i, e := range d.TransactionLogHistory {
		if !e.OperationSuccess {
			if e.Operation == "RESERVE" || e.Operation == "SALE" {
				failedOp = true
			}
			continue
		}
		switch e.Operation {
		case "VOID":
			voided = true
			continue
		case "CANCEL":
			cancelled = true
			continue
		case "RESERVE", "SALE", "CAPTURE", "REFUND":
		default: // INITIATE, and operations this version does not know
			continue
		}
		amount, ok := e.Amount.amount()
		if !ok {
			return unexpected(in, "details", "transactionLogHistory["+strconv.Itoa(i)+"].amount is missing or not an amount in øre")
		}
		switch e.Operation {
		case "RESERVE":
			authorized = max(authorized, amount)
		case "SALE":
			sale = max(sale, amount)
		case "CAPTURE":
			if captured > math.MaxInt64-amount {
				return unexpected(in, "details", "captured amounts overflow")
			}
			captured += amount
		case "REFUND":
			if refunded > math.MaxInt64-amount {
				return unexpected(in, "details", "refunded amounts overflow")
			}
			refunded += amount
		}
	}
	if sale >= 0 {
		authorized = max(authorized, sale)
		captured = max(captured, sale)
	}
	if s := d.TransactionSummary; s != nil {
		c, r, problem := s.amounts()
		if problem != "" {
			return unexpected(in, "details", problem)
		}
		captured, refunded = c, r
		// A log without the reservation still shows a lower bound of what was authorized.
		if rest, ok := s.RemainingAmountToCapture.amount(); ok && authorized < 0 && captured+rest > 0 && rest <= math.MaxInt64-captured {
			authorized = captured + rest
		}
	}

	if captured > 0 {
		authorized = max(authorized, captured)
	}
	p := &abi.Payment{AuthorizedAmount: max(authorized, 0), CapturedAmount: captured, RefundedAmount: refunded}
	released := voided || (cancelled && authorized > 0)
	if released {
		p.CancelledAmount = max(authorized-captured, 0)
	}
	switch {
	case captured > 0:
		p.State = "captured"
	case released:
		p.State = "cancelled"
	case authorized > 0:
		p.State = "authorized"
	case cancelled:
		p.State, p.Reason = "rejected", "the payment was cancelled in Vipps before it was approved"
	case failedOp:
		p.State, p.Reason = "failed", "Vipps could not reserve the amount"
	default:
		p.State = "pending"
		if len(d.TransactionLogHistory) == 0 && d.TransactionSummary == nil {
			// Nothing in the answer says anything about the amounts.
			p = unknownAmounts("pending")
		}
	}
	if p.State != "pending" {
		p.Contact, p.Shipping = d.contactAndShipping()
	}
	return okPayment(p)
}

package ecom

import (
	"strconv"
	"strings"

	"github.com/kassehq/kasse/plugin/internal/vipps"
)

// maxTransactionText is the maxLength of every eCom transactionText, in characters.
const maxTransactionText = 100

// transactionText returns prefix+text trimmed of surrounding white space and cut to 100 characters; it is
// empty if nothing is left. An invalid UTF-8 byte counts as one character: the JSON writer turns it into one
// U+FFFD.
func transactionText(prefix, text string) string {
	s := text
	if prefix != "" {
		s = prefix + text
	}
	return strings.TrimSpace(cutRunes(strings.TrimSpace(s), maxTransactionText))
}

// orderLabel names the order in default transaction texts: the shop's reference, else the orderId.
func orderLabel(reference, orderID string) string {
	if strings.TrimSpace(reference) != "" {
		return reference
	}
	return orderID
}

// cutRunes returns the first n characters of s (an invalid UTF-8 byte counts as one).
func cutRunes(s string, n int) string { return vipps.CutRunes(s, n) }

// clip cuts s to n characters for an error message, marking the cut with an ellipsis.
func clip(s string, n int) string { return vipps.Clip(s, n) }

// quote quotes s for an error message.
func quote(s string) string { return strconv.Quote(s) }

// itoa formats n in decimal.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

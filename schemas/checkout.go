package schemas

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/kassehq/kasse/host/payment"
)

// ValidateCheckout judges co exactly as Validate judges its encoding/json encoding against the Checkout
// schema: nil, or the same *ValidationError with the same violations. It is how a checkout built in Go
// (a platform adapter's) is checked.
//
// A checkout the schema accepts is recognised without encoding it: the schema's own rules (limits,
// patterns, formats and enums, read from the compiled schema at Compile) are applied to the Go value,
// which costs about a tenth of encoding, decoding and walking (BenchmarkValidateCheckoutValue). Anything
// else, and every checkout at all when the schema uses a keyword that reading does not know, is encoded
// and validated as before, so that refusals and their messages come from the schema. Validate applies
// the same rules to a decoded Checkout document before it walks the schema. See RATIONALE.md, "Why a
// checkout built in Go is checked without encoding it".
func (s *Set) ValidateCheckout(co *payment.Checkout) error {
	if s.checkout != nil && s.checkout.accepts(co) {
		return nil
	}
	doc, err := json.Marshal(co)
	if err != nil {
		return fmt.Errorf("schemas: %s: encode checkout: %w", Checkout, err)
	}
	return s.Validate(Checkout, doc)
}

// checkoutRules are the Checkout schema's rules for the members encoding/json writes for a
// payment.Checkout: the document rules of those members (see rule), when each is one a Go value of the
// member's type can be judged by alone. accepts only ever accepts: a checkout it does not accept goes to
// the validator.
type checkoutRules struct {
	merchant, reference, currency, description, returnURL, userFlow *stringRule
	amount                                                          *numRule
	phone                                                           *stringRule
	minLines, maxLines                                              int // -1: no limit
	sku, name                                                       *stringRule
	quantity, unitPrice                                             *numRule
}

// accepts reports whether the schema accepts co's encoding. The members tagged omitempty are judged only
// when encoding/json writes them.
func (r *checkoutRules) accepts(co *payment.Checkout) bool {
	if !r.merchant.ok(co.Merchant) || !r.reference.ok(co.Reference) || !r.amount.okInt(co.Amount) ||
		!r.currency.ok(co.Currency) || !r.description.ok(co.Description) || !r.returnURL.ok(co.ReturnURL) {
		return false
	}
	if co.UserFlow != "" && !r.userFlow.ok(co.UserFlow) {
		return false
	}
	if c := co.Customer; c != nil && c.PhoneNumber != "" && !r.phone.ok(c.PhoneNumber) {
		return false
	}
	if n := len(co.Lines); n > 0 {
		if r.minLines >= 0 && n < r.minLines || r.maxLines >= 0 && n > r.maxLines {
			return false
		}
		for i := range co.Lines {
			l := &co.Lines[i]
			if l.SKU != "" && !r.sku.ok(l.SKU) || !r.name.ok(l.Name) || !r.quantity.okInt(l.Quantity) ||
				!r.unitPrice.okInt(l.UnitPrice) {
				return false
			}
		}
	}
	return true
}

// readCheckoutRules reads the rules for a payment.Checkout from the Checkout schema's document rules
// (nil when those could not be read). It returns nil when the schema says anything a Go value cannot be
// judged by alone: a member the Go type may leave out made required, a member the Go type does not have or
// lacks, a member with more than one type, an anyOf or a $ref beside other keywords. The schema is then
// applied by the validator alone.
func readCheckoutRules(root *rule) *checkoutRules {
	var r checkoutRules
	props, ok := root.object([]string{"merchant", "reference", "amount", "currency", "description", "returnUrl"},
		"customer", "userFlow", "lines")
	if !ok {
		return nil
	}
	customer, ok := props["customer"].object(nil, "phoneNumber")
	if !ok {
		return nil
	}
	lines := props["lines"]
	if !lines.plain(typeArray) || lines.items == nil {
		return nil
	}
	r.minLines, r.maxLines = lines.minItems, lines.maxItems
	line, ok := lines.items.object([]string{"name", "quantity", "unitPrice"}, "sku")
	if !ok {
		return nil
	}
	for dst, m := range map[**stringRule]*rule{&r.merchant: props["merchant"], &r.reference: props["reference"],
		&r.currency: props["currency"], &r.description: props["description"], &r.returnURL: props["returnUrl"],
		&r.userFlow: props["userFlow"], &r.phone: customer["phoneNumber"], &r.sku: line["sku"],
		&r.name: line["name"]} {
		if !m.plain(typeString) {
			return nil
		}
		*dst = &m.str
	}
	// An int64 is always written as an integer literal: literal and "multipleOf": 1 hold.
	for dst, m := range map[**numRule]*rule{&r.amount: props["amount"], &r.quantity: line["quantity"],
		&r.unitPrice: line["unitPrice"]} {
		if !m.plain(typeInteger) {
			return nil
		}
		*dst = &m.num
	}
	return &r
}

// plain reports whether r is of the one type t and judged by its own keywords alone; a value of another
// type than string has no format or enum either.
func (r *rule) plain(t jsonTypes) bool {
	return r != nil && r.types == t && r.ref == nil && r.anyOf == nil &&
		(t == typeString || r.str.format == nil && r.str.enum == nil)
}

// object reads an object rule whose members are exactly always (which encoding/json always writes) and
// optional (omitempty members); only always members may be required, and no other member is allowed.
func (r *rule) object(always []string, optional ...string) (map[string]*rule, bool) {
	if !r.plain(typeObject) || !r.closed || len(r.props) != len(always)+len(optional) {
		return nil, false
	}
	for _, name := range r.required {
		if !slices.Contains(always, name) {
			return nil, false
		}
	}
	for _, name := range append(slices.Clip(always), optional...) {
		if r.props[name] == nil {
			return nil, false
		}
	}
	return r.props, true
}

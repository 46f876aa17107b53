package ecom

import (
	"strconv"
	"strings"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

// Express Checkout (Vipps Hurtigkasse) in the eCom API v2: the customer chooses address and shipping in
// Vipps. vipps-reference.md §3.2 (merchantInfo for express), §4.1 (the express callback), §4.2 (the
// shippingDetails request and FetchShippingCostResponse) and §9.3 (zipCode vs postCode, "NO" vs "Norway").

const (
	paymentTypeExpress = "eComm Express Payment"
	// maxShippingMethod and maxShippingMethodID are ShippingDetails' maxLengths.
	maxShippingMethod   = 256
	maxShippingMethodID = 100
)

// appendExpress writes the express members of merchantInfo: paymentType, consentRemovalPrefix and either
// staticShippingDetails (static shipping) or shippingDetailsPrefix (dynamic shipping).
func appendExpress(w *sdk.JSON, in *abi.Input) *abi.Output {
	x := in.Merchant.Express
	switch {
	case x.ConsentRemovalPrefix == "":
		return invalid("merchant.express.consentRemovalPrefix", "empty (Vipps requires it for Express)")
	case len(x.ConsentRemovalPrefix) > maxURL:
		return invalid("merchant.express.consentRemovalPrefix", "is longer than 255 characters")
	case len(x.Shipping.Methods) == 0:
		return invalid("merchant.express.shipping.methods", "empty: Express needs at least one shipping method")
	}
	w.Str("paymentType", paymentTypeExpress).Str("consentRemovalPrefix", x.ConsentRemovalPrefix)
	switch x.Shipping.Mode {
	case abi.ShippingDynamic:
		switch {
		case x.ShippingDetailsPrefix == "":
			return invalid("merchant.express.shippingDetailsPrefix", "empty (dynamic shipping needs it)")
		case len(x.ShippingDetailsPrefix) > maxURL:
			return invalid("merchant.express.shippingDetailsPrefix", "is longer than 255 characters")
		}
		w.Str("shippingDetailsPrefix", x.ShippingDetailsPrefix)
	case abi.ShippingStatic:
		opts := shippingOptions(in, nil)
		if len(opts) == 0 {
			return invalid("merchant.express.shipping", "no shipping method is offered without knowing the address")
		}
		w.ArrField("staticShippingDetails")
		appendShippingDetails(w, opts)
		w.End()
	default:
		return invalid("merchant.express.shipping.mode", quote(clip(x.Shipping.Mode, 20))+" is not static or dynamic")
	}
	return nil
}

// option is one shipping option offered to the customer; cost in øre.
type option struct {
	m    *abi.ShippingMethod
	cost int64
}

// cartTotal is the goods at initiation: the sum of the stored lines, or the session amount without lines.
// It never comes from a live cart.
func cartTotal(s *abi.Session) int64 {
	if len(s.Lines) == 0 {
		return s.Amount
	}
	var t int64
	for _, l := range s.Lines {
		t += l.Quantity * l.UnitPrice
	}
	return t
}

// shippingOptions computes the options for addr from the merchant's methods and rules and the cart stored
// with the session. addr nil means "address not known yet" (static shipping): only methods and rules that
// do not depend on the address count.
func shippingOptions(in *abi.Input, addr *abi.Address) []option {
	sh := &in.Merchant.Express.Shipping
	total := cartTotal(&in.Session)
	out := make([]option, 0, len(sh.Methods)) // one allocation, not one per doubling
	for i := range sh.Methods {
		m := &sh.Methods[i]
		if !serves(m.Countries, m.PostCodePrefixes, addr) {
			continue
		}
		cost := m.Cost
		for j := range sh.Rules {
			r := &sh.Rules[j]
			if (len(r.Methods) == 0 || contains(r.Methods, m.ID)) && total >= r.MinAmount &&
				serves(r.Countries, r.PostCodePrefixes, addr) {
				cost = r.Cost
				break
			}
		}
		out = append(out, option{m: m, cost: cost})
	}
	return out
}

// serves reports whether a method or rule limited to countries and postcode prefixes covers addr. Without
// an address only unlimited ones do.
func serves(countries, prefixes []string, addr *abi.Address) bool {
	if addr == nil {
		return len(countries) == 0 && len(prefixes) == 0
	}
	if len(countries) > 0 && !containsFold(countries, addr.Country) {
		return false
	}
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(addr.PostCode, p) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return true
		}
	}
	return false
}

// appendShippingDetails writes opts as eCom ShippingDetails elements: shippingCost in NOK (a decimal, not
// øre), isDefault "Y" or "N" (exactly one "Y": the merchant's default, else the first), priority from 1
// in the merchant's order.
func appendShippingDetails(w *sdk.JSON, opts []option) {
	def := 0
	for i, o := range opts {
		if o.m.Default {
			def = i
			break
		}
	}
	var cost [24]byte // kroner's digits, on the stack
	for i, o := range opts {
		isDefault := "N"
		if i == def {
			isDefault = "Y"
		}
		w.Obj().
			Str("isDefault", isDefault).
			Int("priority", int64(i+1)).
			Raw("shippingCost", kroner(cost[:0], o.cost)).
			Str("shippingMethod", cutRunes(o.m.Name, maxShippingMethod)).
			Str("shippingMethodId", cutRunes(o.m.ID, maxShippingMethodID)).
			End()
	}
}

// kroner appends øre to b as a NOK decimal number with two decimals, e.g. 9900 -> 99.00.
func kroner(b []byte, ore int64) []byte {
	b = strconv.AppendInt(b, ore/100, 10)
	c := ore % 100
	return append(b, '.', byte('0'+c/10), byte('0'+c%10))
}

// shippingRequest is ShippingCostAndMethod, the body of POST [shippingDetailsPrefix]/v2/payments/{orderId}
// /shippingDetails. postCode is the spec's name; zipCode (the express callback's name) is accepted too.
type shippingRequest struct {
	AddressID    flexInt    `json:"addressId"`
	AddressLine1 flexString `json:"addressLine1"`
	AddressLine2 flexString `json:"addressLine2"`
	City         flexString `json:"city"`
	Country      flexString `json:"country"`
	PostCode     flexString `json:"postCode"`
	ZipCode      flexString `json:"zipCode"`
}

// shippingDetails answers Vipps's shipping question with FetchShippingCostResponse. The options come from
// the cart stored with the session at initiation, the address asked about and the merchant's rules. An
// address no method serves gets an empty list, which Vipps shows as "no shipping methods found".
func shippingDetails(in *abi.Input) *abi.Output {
	id, bad := orderID(in)
	if bad != nil {
		return bad
	}
	if in.Merchant.Express == nil {
		return invalid("merchant.express", "missing (shipping_options needs the merchant's shipping rules)")
	}
	if len(in.Callback) == 0 {
		return invalid("callback", "missing (shipping_options reads the body Vipps posted)")
	}
	var req shippingRequest
	if err := decodeFast(in.Callback, &req, readShippingRequest); err != nil {
		return fail(CodeUnexpectedResponse, "Vipps shippingDetails request: "+err.Error())
	}
	addressID, ok := req.AddressID.amount()
	if !ok {
		return fail(CodeUnexpectedResponse, "Vipps shippingDetails request: addressId is missing or not a whole number")
	}
	addr := address(new(abi.Address), string(req.AddressLine1), string(req.AddressLine2), string(req.PostCode), string(req.ZipCode),
		string(req.City), string(req.Country))

	var w sdk.JSON
	w.Obj().Int("addressId", addressID).Str("orderId", id).ArrField("shippingDetails")
	appendShippingDetails(&w, shippingOptions(in, addr))
	w.End().End()
	r := new(struct { // the output and its reply in one allocation
		out   abi.Output
		reply abi.Reply
	})
	r.reply = abi.Reply{Status: 200, Body: w.Bytes()}
	r.out = abi.Output{OK: true, Reply: &r.reply}
	return &r.out
}

// address normalises a Vipps address: postCode or zipCode, country as an ISO code ("Norway" -> "NO").
// It fills dst and returns it, so that a caller can allocate it together with what holds it.
func address(dst *abi.Address, line1, line2, postCode, zipCode, city, country string) *abi.Address {
	pc := strings.TrimSpace(postCode)
	if pc == "" {
		pc = strings.TrimSpace(zipCode)
	}
	*dst = abi.Address{
		Line1: cleanText(line1), Line2: cleanText(line2), PostCode: pc, City: cleanText(city),
		Country: countryCode(country),
	}
	return dst
}

// countryCode maps the country names Vipps sends to ISO 3166-1 alpha-2; a two-letter value is upper-cased.
func countryCode(c string) string {
	c = strings.TrimSpace(c)
	if len(c) > 2 && isASCII(c) {
		// strings.ToLower allocates for "Norway"; for ASCII, EqualFold is the same comparison without it.
		for _, n := range countryNames {
			if strings.EqualFold(c, n.name) {
				return n.code
			}
		}
		return cleanText(c)
	}
	switch strings.ToLower(c) {
	case "norway", "norge", "noreg":
		return "NO"
	case "sweden", "sverige":
		return "SE"
	case "denmark", "danmark":
		return "DK"
	case "finland", "suomi":
		return "FI"
	}
	if len(c) == 2 {
		return strings.ToUpper(c)
	}
	return cleanText(c)
}

// countryNames are the names countryCode maps, in lower case.
var countryNames = []struct{ name, code string }{
	{"norway", "NO"}, {"norge", "NO"}, {"noreg", "NO"}, {"sweden", "SE"}, {"sverige", "SE"},
	{"denmark", "DK"}, {"danmark", "DK"}, {"finland", "FI"}, {"suomi", "FI"},
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// addressBody is the address in an express callback's shippingDetails.
type addressBody struct {
	AddressLine1 flexString `json:"addressLine1"`
	AddressLine2 flexString `json:"addressLine2"`
	City         flexString `json:"city"`
	Country      flexString `json:"country"`
	ZipCode      flexString `json:"zipCode"`
	PostCode     flexString `json:"postCode"`
}

// shippingDetailsBody is the shippingDetails member of an express callback or details answer.
type shippingDetailsBody struct {
	Address          *addressBody `json:"address"`
	ShippingCost     *float64     `json:"shippingCost"`
	ShippingMethod   flexString   `json:"shippingMethod"`
	ShippingMethodID flexString   `json:"shippingMethodId"`
}

// expressDetails are the members of an express callback (and of express /details) that say who paid and
// how the order is shipped.
type expressDetails struct {
	ShippingDetails *shippingDetailsBody `json:"shippingDetails"`
	UserDetails     *struct {
		UserID       flexString `json:"userId"`
		FirstName    flexString `json:"firstName"`
		LastName     flexString `json:"lastName"`
		Email        flexString `json:"email"`
		MobileNumber flexString `json:"mobileNumber"`
	} `json:"userDetails"`
}

// contactAndShipping returns the customer and the shipping choice of an express body, nil where absent.
// The shipping cost arrives in NOK and is returned in øre, rounded to the nearest øre.
func (d *expressDetails) contactAndShipping() (*abi.Contact, *abi.ShippingChoice) {
	if d.UserDetails == nil && d.ShippingDetails == nil {
		return nil, nil
	}
	// The contact, shipping choice and address in one allocation: each costs about a microsecond in the
	// guest.
	parts := new(struct {
		c abi.Contact
		s abi.ShippingChoice
		a abi.Address
	})
	var c *abi.Contact
	if u := d.UserDetails; u != nil {
		c = &parts.c
		*c = abi.Contact{UserID: strings.TrimSpace(string(u.UserID)), FirstName: cleanText(string(u.FirstName)),
			LastName: cleanText(string(u.LastName)), Email: cleanText(string(u.Email)),
			PhoneNumber: cleanText(string(u.MobileNumber))}
		if *c == (abi.Contact{}) {
			c = nil
		}
	}
	var sc *abi.ShippingChoice
	if s := d.ShippingDetails; s != nil {
		sc = &parts.s
		*sc = abi.ShippingChoice{MethodID: cleanText(string(s.ShippingMethodID)), Method: cleanText(string(s.ShippingMethod))}
		if s.ShippingCost != nil && *s.ShippingCost > 0 {
			sc.Cost = int64(*s.ShippingCost*100 + 0.5)
		}
		if a := s.Address; a != nil {
			sc.Address = address(&parts.a, string(a.AddressLine1), string(a.AddressLine2), string(a.PostCode),
				string(a.ZipCode), string(a.City), string(a.Country))
		}
	}
	return c, sc
}

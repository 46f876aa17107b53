package config

import "strconv"

// Shipping is a merchant's shipping for Express Checkout. Money is in minor units (øre).
type Shipping struct {
	// Mode is "static" (every method and its cost go to Vipps with the payment; methods and rules limited
	// to countries or postcodes are left out) or "dynamic" (Vipps asks kasse for the options once the
	// customer chose an address). Required.
	Mode string `json:"mode"`
	// Methods are the ways the merchant ships, in the order offered. Required, 1 to 20.
	Methods []ShippingMethod `json:"methods"`
	// Rules set a method's cost from the cart total, the country and the postcode; the first rule that
	// matches a method wins. Default none.
	Rules []ShippingRule `json:"rules,omitempty"`
}

// ShippingMethod is one way of shipping.
type ShippingMethod struct {
	// ID is sent to Vipps as shippingMethodId: 1 to 100 letters, digits, '.', '_' and '-'. Required,
	// unique within the merchant.
	ID string `json:"id"`
	// Name is what the customer sees in Vipps, 1 to 100 characters. Required.
	Name string `json:"name"`
	// Cost is the price in øre before rules, 0 to 1000000. Required.
	Cost int64 `json:"cost"`
	// Default preselects the method in Vipps. Default false (then the first offered is preselected); at
	// most one method may set it.
	Default bool `json:"default,omitempty"`
	// PickupPoint marks a place where the customer collects the parcel. Default false.
	PickupPoint bool `json:"pickupPoint,omitempty"`
	// Countries (ISO 3166-1 alpha-2) the method ships to. Default: every country.
	Countries []string `json:"countries,omitempty"`
	// PostCodePrefixes limit the method to postcodes starting with one of them. Default: every postcode.
	PostCodePrefixes []string `json:"postCodePrefixes,omitempty"`
}

// ShippingRule sets a method's cost when every condition given matches.
type ShippingRule struct {
	// Methods are the ids of the methods the rule applies to; each must be a method's id. Default: all.
	Methods []string `json:"methods,omitempty"`
	// Countries (ISO 3166-1 alpha-2) the rule applies to. Default: all.
	Countries []string `json:"countries,omitempty"`
	// PostCodePrefixes the rule applies to. Default: all.
	PostCodePrefixes []string `json:"postCodePrefixes,omitempty"`
	// MinAmount is the cart total in øre from which the rule applies (free shipping over an amount).
	// Default 0.
	MinAmount int64 `json:"minAmount,omitempty"`
	// Cost is the method's cost in øre when the rule applies; 0 is free. Required.
	Cost int64 `json:"cost"`
}

// checkExpress checks what the schema cannot: Express needs shipping, method ids are unique, at most one
// method is the default, and rules name existing methods.
func checkExpress(base string, m *Merchant, add func(ptr, format string, args ...any)) {
	if m.ExpressCheckout && m.Shipping == nil {
		add(base+"/shipping", "merchant %s: expressCheckout is true, so shipping (mode and methods) is required", m.ID)
	}
	if m.Shipping == nil {
		return
	}
	ids := map[string]bool{}
	defaults := 0
	for i, sm := range m.Shipping.Methods {
		if ids[sm.ID] {
			add(base+"/shipping/methods/"+strconv.Itoa(i)+"/id", "merchant %s: shipping method id %q is used twice", m.ID, sm.ID)
		}
		ids[sm.ID] = true
		if sm.Default {
			defaults++
			if defaults == 2 {
				add(base+"/shipping/methods/"+strconv.Itoa(i)+"/default", "merchant %s: only one shipping method may be the default", m.ID)
			}
		}
	}
	for i, r := range m.Shipping.Rules {
		for j, id := range r.Methods {
			if !ids[id] {
				add(base+"/shipping/rules/"+strconv.Itoa(i)+"/methods/"+strconv.Itoa(j),
					"merchant %s: no shipping method has the id %q", m.ID, id)
			}
		}
	}
}

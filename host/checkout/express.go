package checkout

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/internal/tracing"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

// Express Checkout (Vipps Hurtigkasse): the customer buys straight from a product page and chooses address
// and shipping inside Vipps. An Express session differs from a regular one in four ways:
//
//   - it is created by CreateExpress, only for a merchant whose expressCheckout is on (the running config,
//     so a reload switches it without a restart), and its plugin input carries the merchant's shipping;
//   - Vipps reaches kasse for it under one prefix, ExpressPrefix: the shipping question (dynamic shipping),
//     the transaction callback and consent removal. Callbacks for Express sessions therefore arrive at
//     ExpressCallback, which stores the customer and the chosen shipping with the payment;
//   - shipping is computed by the plugin from the cart stored with the session at initiation (its Lines and
//     Amount), never from a live cart: the Express shipping question comes server to server, without the
//     customer's session (the complaint merchants had about the official plugins);
//   - the customer's personal data is indexed by the Vipps userId, and RemoveConsent erases it from every
//     stored session of that user, keeping amounts and references.

// ExpressDisabledError is an Express checkout for a merchant whose Express Checkout is off.
type ExpressDisabledError struct{ Merchant string }

func (e *ExpressDisabledError) Error() string {
	return fmt.Sprintf("checkout: merchant %q has Express Checkout off (setting expressCheckout)", e.Merchant)
}

// ErrNotExpress is returned (wrapped) for an Express request about a session that is not an Express one.
var ErrNotExpress = errors.New("checkout: not an Express Checkout session")

// ExpressPrefix is the shippingDetailsPrefix, consentRemovalPrefix and, for Express sessions, the
// callbackPrefix kasse gives Vipps for a merchant. Vipps appends /v2/payments/{orderId}/shippingDetails,
// /v2/payments/{orderId} and /v2/consents/{userId}. It ends in the merchant's secret segment
// (Config.ExpressSegment): consent removal comes without authentication, so the URL is the credential.
func (s *Service) ExpressPrefix(merchant string) string {
	prefix := s.cfg.PublicURL + "/v1/vipps/" + merchant + "/express"
	if s.cfg.ExpressSegment != nil {
		prefix += "/" + s.cfg.ExpressSegment(merchant)
	}
	return prefix
}

// ExpressEnabled reports whether the merchant's Express Checkout is on in the running configuration.
func (s *Service) ExpressEnabled(merchant string) (bool, error) {
	m, ok := s.cfg.Merchants.Merchant(merchant)
	if !ok {
		return false, &UnknownMerchantError{Merchant: merchant}
	}
	return m.ExpressCheckout && m.Shipping != nil, nil
}

// expressInput is s.input for an Express session: the Express callbackPrefix and the merchant's shipping.
func (s *Service) expressInput(op abi.Op, m config.Merchant, sess *payment.Session) (*abi.Input, error) {
	if m.Shipping == nil {
		return nil, &ExpressDisabledError{Merchant: m.ID}
	}
	in := s.input(op, m, sess, nil)
	prefix := s.ExpressPrefix(m.ID)
	in.Merchant.CallbackPrefix = prefix
	x := &abi.Express{ShippingDetailsPrefix: prefix, ConsentRemovalPrefix: prefix,
		Shipping: abi.Shipping{Mode: m.Shipping.Mode}}
	for _, sm := range m.Shipping.Methods {
		x.Shipping.Methods = append(x.Shipping.Methods, abi.ShippingMethod{ID: sm.ID, Name: sm.Name, Cost: sm.Cost,
			Default: sm.Default, PickupPoint: sm.PickupPoint, Countries: sm.Countries, PostCodePrefixes: sm.PostCodePrefixes})
	}
	for _, r := range m.Shipping.Rules {
		x.Shipping.Rules = append(x.Shipping.Rules, abi.ShippingRule{Methods: r.Methods, Countries: r.Countries,
			PostCodePrefixes: r.PostCodePrefixes, MinAmount: r.MinAmount, Cost: r.Cost})
	}
	in.Merchant.Express = x
	return in, nil
}

// CreateExpress starts an Express Checkout payment for co: like Create, but only for a merchant whose
// Express Checkout is on (else an *ExpressDisabledError), and the plugin builds an "eComm Express Payment"
// with the merchant's shipping. co.Lines and co.Amount are stored with the session as the cart shipping is
// computed from. With a non-empty idempotencyKey a repeated call with the same body returns the first
// call's session and replayed=true.
func (s *Service) CreateExpress(ctx context.Context, co payment.Checkout, idempotencyKey string) (sess *payment.Session, replayed bool, err error) {
	ctx, span := tracing.Start(ctx, "checkout.CreateExpress")
	defer func() { tracing.End(span, err) }()
	return s.create(ctx, co, idempotencyKey, true)
}

// checkCart requires an Express checkout to carry its cart: shipping is computed from the lines stored
// with the session, so they must be there and add up to the amount.
func checkCart(co payment.Checkout) error {
	if len(co.Lines) == 0 {
		return &InputError{Pointer: "/lines", Detail: "Express Checkout needs the cart's lines: shipping is computed from them"}
	}
	var sum int64
	for _, l := range co.Lines {
		sum += l.Quantity * l.UnitPrice // the schema bounds both, so this cannot overflow
	}
	if sum != co.Amount {
		return &InputError{Pointer: "/amount", Detail: fmt.Sprintf("must equal the sum of the lines, %d øre", sum)}
	}
	return nil
}

// expressSession finds the Express session of merchant's payment providerRef and checks the callback
// token Vipps echoes as the Authorization header (compared in constant time; a "Bearer " prefix is
// tolerated).
func (s *Service) expressSession(ctx context.Context, merchant, providerRef, authorization string) (config.Merchant, *payment.Session, Plugin, error) {
	m, ok := s.cfg.Merchants.Merchant(merchant)
	if !ok {
		return m, nil, nil, &UnknownMerchantError{Merchant: merchant}
	}
	sess, err := s.cfg.Store.GetByProviderReference(ctx, merchant, providerRef)
	if err != nil {
		return m, nil, nil, fmt.Errorf("checkout: express request for %s/%s: %w", merchant, providerRef, err)
	}
	token := strings.TrimPrefix(authorization, "Bearer ")
	if sess.CallbackToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(sess.CallbackToken)) != 1 {
		return m, nil, nil, ErrCallbackUnauthorized
	}
	if !sess.Express {
		return m, nil, nil, fmt.Errorf("session[%s]: %w", sess.ID, ErrNotExpress)
	}
	plugin, ok := s.pluginFor(sess)
	if !ok {
		return m, nil, nil, &UnavailableError{What: "payment plugin " + sess.Plugin}
	}
	return m, sess, plugin, nil
}

// ShippingDetails answers Vipps's Express shipping question, POST [ExpressPrefix]/v2/payments/{orderId}
// /shippingDetails: the plugin computes the options from the cart stored with the session, the address in
// body and the merchant's current shipping rules. It returns the HTTP status and JSON body to answer with.
// It reads the store once and calls the plugin once, so it answers in milliseconds, far inside Vipps's
// 10 seconds. An authenticated body that schemas.VippsEcomShippingDetails refuses is a
// *schemas.ValidationError, and the plugin is not asked: the question changes nothing either way.
func (s *Service) ShippingDetails(ctx context.Context, merchant, providerRef, authorization string, body []byte) (int, []byte, error) {
	ctx, span := tracing.Start(ctx, "checkout.ShippingDetails")
	defer span.End()
	m, sess, plugin, err := s.expressSession(ctx, merchant, providerRef, authorization)
	if err != nil {
		return 0, nil, err
	}
	// After the token check, as for callbacks: who may not ask learns nothing about the format.
	if err := s.cfg.Schemas.Validate(schemas.VippsEcomShippingDetails, body); err != nil {
		return 0, nil, err
	}
	in, err := s.expressInput(abi.OpShippingOptions, m, sess)
	if err != nil {
		return 0, nil, err
	}
	in.Callback = json.RawMessage(body)
	out, err := s.call(ctx, plugin, in)
	if err != nil {
		return 0, nil, err
	}
	if !out.OK || out.Reply == nil {
		return 0, nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: abi.OpShippingOptions,
			Err: out.Error, Cause: errors.New("output has no reply")}
	}
	return out.Reply.Status, out.Reply.Body, nil
}

// ExpressCallback handles the transaction callback of an Express payment, POST [ExpressPrefix]/v2/
// payments/{orderId}: like Callback, and it also stores the customer (userDetails) and the chosen shipping
// (shippingDetails: method, cost in øre, address) with the session, and indexes the customer's Vipps
// userId for consent removal. Both RESERVE and RESERVED, and both zipCode and postCode, are understood (by
// the plugin).
func (s *Service) ExpressCallback(ctx context.Context, merchant, providerRef, authorization string, body []byte) (*payment.Session, error) {
	ctx, span := tracing.Start(ctx, "checkout.ExpressCallback")
	defer span.End()
	m, sess, plugin, err := s.expressSession(ctx, merchant, providerRef, authorization)
	if err != nil {
		return nil, err
	}
	// As in Callback: the same authenticated callback again has had its effect.
	digest := payment.MessageDigest("express callback", body)
	if sess.HasApplied(digest) {
		return s.repeated(ctx, sess, "express callback"), nil
	}
	if err := s.cfg.Schemas.Validate(schemas.VippsEcomCallback, body); err != nil {
		return nil, err
	}
	in := s.input(abi.OpReadCallback, m, sess, nil)
	in.Callback = json.RawMessage(body)
	out, err := s.call(ctx, plugin, in)
	if err != nil {
		return nil, err
	}
	if !out.OK || out.Payment == nil {
		return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: abi.OpReadCallback, Err: out.Error,
			Cause: errors.New("output has no payment")}
	}
	return s.applyMessage(ctx, sess.ID, sess, out.Payment, "express callback", digest)
}

// ApplyExpressDetails stores the customer and the shipping a plugin read from an Express callback or
// payment details in the session, and reports whether that changed it. Details already stored are kept
// when a later answer lacks them, and never come back once consent removal erased them (a session whose
// ConsentRemoved event exists). Call it inside a store update, next to Session.Apply.
func ApplyExpressDetails(cur *payment.Session, pay *abi.Payment) bool {
	if pay == nil || !cur.Express || consentRemoved(cur) {
		return false
	}
	before := *cur
	if c := pay.Contact; c != nil {
		cur.Contact = payment.Contact{UserID: c.UserID, FirstName: c.FirstName, LastName: c.LastName,
			Email: c.Email, PhoneNumber: c.PhoneNumber}
	}
	if sh := pay.Shipping; sh != nil {
		cur.Shipping = payment.Shipping{MethodID: sh.MethodID, Method: sh.Method, Cost: max(sh.Cost, 0)}
		if a := sh.Address; a != nil {
			cur.Shipping.Address = payment.Address{Line1: a.Line1, Line2: a.Line2, PostCode: a.PostCode,
				City: a.City, Country: a.Country}
		}
	}
	return cur.Contact != before.Contact || cur.Shipping != before.Shipping
}

// IndexContact indexes the session under its Express customer's Vipps userId, for consent removal. A
// failure is logged: the callback that brought the data must still succeed.
func (s *Service) IndexContact(ctx context.Context, sess *payment.Session) {
	if sess == nil || sess.Contact.UserID == "" {
		return
	}
	ui, ok := s.cfg.Store.(store.UserIndex)
	if !ok {
		s.log.Error("checkout: the session store cannot index users; consent removal will not find this session",
			"session", sess.ID)
		return
	}
	if err := ui.IndexUser(ctx, sess.Merchant, sess.Contact.UserID, sess.ID, s.cfg.SessionTTL); err != nil {
		s.log.Error("checkout: index express customer", "session", sess.ID, "err", err)
	}
}

// CauseConsentRemoved is the cause of the history event consent removal adds to a session.
const CauseConsentRemoved = "consent removed: personal data erased"

func consentRemoved(s *payment.Session) bool {
	for i := len(s.History) - 1; i >= 0; i-- {
		if s.History[i].Cause == CauseConsentRemoved {
			return true
		}
	}
	return false
}

// RemoveConsent erases the personal data of the Vipps user userID from every stored session of merchant,
// DELETE [ExpressPrefix]/v2/consents/{userId}: the customer's name, email, phone numbers, Vipps userId and
// delivery address. Amounts, states, references, order lines, the shipping method and its cost stay, and
// the session's history records the erasure. It returns how many sessions it changed; a user kasse does
// not know is not an error (the answer to Vipps is 200 either way).
func (s *Service) RemoveConsent(ctx context.Context, merchant, userID string) (int, error) {
	if _, ok := s.cfg.Merchants.Merchant(merchant); !ok {
		return 0, &UnknownMerchantError{Merchant: merchant}
	}
	if userID == "" {
		return 0, &InputError{Pointer: "/userId", Detail: "the user id is empty"}
	}
	ui, ok := s.cfg.Store.(store.UserIndex)
	if !ok {
		return 0, &UnavailableError{What: "a session store that can find a user's sessions"}
	}
	ids, err := ui.SessionsOfUser(ctx, merchant, userID)
	if err != nil {
		return 0, fmt.Errorf("checkout: remove consent: %w", err)
	}
	n := 0
	for _, id := range ids {
		erased := false
		_, err := s.cfg.Store.Update(ctx, id, func(cur *payment.Session) (bool, error) {
			erased = cur.Merchant == merchant && cur.Contact.UserID == userID
			if !erased {
				return false, nil
			}
			cur.Contact = payment.Contact{}
			cur.Shipping.Address = payment.Address{}
			cur.Customer = nil
			// The digests of the callbacks read are digests of personal data too. A callback repeated
			// after this is read again, and ApplyExpressDetails keeps the erased details out.
			cur.Applied = nil
			now := s.now().UTC()
			cur.History = append(cur.History, payment.Event{At: now, From: cur.State, To: cur.State,
				Cause: CauseConsentRemoved})
			cur.UpdatedAt = now
			return true, nil
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue // expired meanwhile: nothing left to erase
		case err != nil:
			return n, fmt.Errorf("checkout: remove consent from session[%s]: %w", id, err)
		case erased:
			n++
		}
	}
	if err := ui.ForgetUser(ctx, merchant, userID); err != nil {
		return n, fmt.Errorf("checkout: remove consent: %w", err)
	}
	s.log.Info("consent removed", "merchant", merchant, "sessions", n)
	return n, nil
}

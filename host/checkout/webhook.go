package checkout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/kassehq/kasse/host/internal/tracing"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/host/webhooks"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

// WebhookVerifier authenticates webhook deliveries for a merchant; *webhooks.Manager satisfies it.
type WebhookVerifier interface {
	VerifyWebhook(ctx context.Context, merchant string, req webhooks.Request) error
}

// ErrWebhookUnverified is returned (wrapping the verifier's error) for a delivery whose signature, body
// hash or date does not check out. Nothing was changed; a status check of the payment it names, if any,
// was scheduled.
var ErrWebhookUnverified = errors.New("checkout: webhook delivery not verified")

// eventReference finds a webhook body's reference without trusting the rest of it.
var eventReference = regexp.MustCompile(`^[a-zA-Z0-9-]{8,50}$`)

// moneyEvents are the events whose amount is one operation's, not a total: after applying one, the
// service asks the provider for the payment's aggregate.
var moneyEvents = map[string]bool{"CAPTURED": true, "REFUNDED": true, "CANCELLED": true}

// Webhook handles one webhook delivery for merchant (a Vipps ePayment event through the Webhooks API).
//
// The delivery is verified first with v. An unverified delivery changes nothing: it only makes the
// payment it names (if that is a session of this merchant that is not final) due for a status check by the
// reconciler, and ErrWebhookUnverified is returned (answer 401). A verified delivery is checked against
// schemas/vipps-epayment-webhook.schema.json, matched to the merchant's session by reference, read by the
// session's plugin (read_callback) and folded into the session. Deliveries are at least once and may come
// out of order or days late: the state machine only moves forward and amounts only grow, so a repeated or
// stale event changes nothing and is applied once. CAPTURED, REFUNDED and CANCELLED events carry one
// operation's amount, so after them the session is also made due for a status check, which reads the
// aggregate.
//
// A verified event for a reference kasse does not know, or one the plugin finds does not match its session
// (callback_mismatch: another amount or merchant), returns (nil, nil): the caller answers 2xx so that Vipps
// stops retrying what can never apply; a mismatch is logged and the session is made due for a status check.
func (s *Service) Webhook(ctx context.Context, v WebhookVerifier, merchant string, req webhooks.Request) (*payment.Session, error) {
	ctx, span := tracing.Start(ctx, "checkout.Webhook")
	defer span.End()
	m, ok := s.cfg.Merchants.Merchant(merchant)
	if !ok {
		return nil, &UnknownMerchantError{Merchant: merchant}
	}
	if err := v.VerifyWebhook(ctx, merchant, req); err != nil {
		s.checkNamedPayment(ctx, merchant, req.Body)
		s.log.Warn("checkout: webhook not verified", "merchant", merchant, "err", err)
		return nil, fmt.Errorf("%w: %w", ErrWebhookUnverified, err)
	}
	// A verified event byte for byte the same as one already applied to its session (a redelivery) has
	// had its effect; only the status check a money event asks for is scheduled again. The session is
	// looked up before the schema check for that, on a reference of the right shape only.
	var ev struct {
		Reference string `json:"reference"`
		Name      string `json:"name"`
	}
	digest := payment.MessageDigest("webhook", req.Body)
	var sess *payment.Session
	var err error
	if json.Unmarshal(req.Body, &ev) == nil && eventReference.MatchString(ev.Reference) {
		sess, err = s.cfg.Store.GetByProviderReference(ctx, merchant, ev.Reference)
		if err == nil && sess.HasApplied(digest) {
			return s.afterWebhook(ctx, s.repeated(ctx, sess, "webhook "+ev.Name), ev.Name), nil
		}
	}
	if err := s.cfg.Schemas.Validate(schemas.VippsEPaymentWebhook, req.Body); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(req.Body, &ev); err != nil {
		return nil, &InputError{Pointer: "", Detail: "the webhook event is not a JSON object"}
	}
	if sess == nil && err == nil {
		sess, err = s.cfg.Store.GetByProviderReference(ctx, merchant, ev.Reference)
	}
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("checkout: webhook for an unknown payment ignored", "merchant", merchant, "event", ev.Name)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkout: webhook for %s/%s: %w", merchant, ev.Reference, err)
	}
	plugin, ok := s.pluginFor(sess)
	if !ok {
		return nil, &UnavailableError{What: "payment plugin " + sess.Plugin}
	}
	in := s.input(abi.OpReadCallback, m, sess, nil)
	in.Callback = json.RawMessage(req.Body)
	out, err := s.call(ctx, plugin, in)
	if err != nil {
		return nil, err
	}
	if !out.OK {
		if out.Error != nil && out.Error.Code == "callback_mismatch" {
			// Signed by Vipps, yet not about this payment as kasse knows it: retrying cannot help. Ask Vipps
			// for the payment's state instead, and let the delivery go.
			s.log.Warn("checkout: verified webhook does not match its session; status check scheduled",
				"session", sess.ID, "event", ev.Name, "detail", out.Error.Message)
			if err := s.cfg.Store.SchedulePoll(ctx, sess.ID, s.now()); err != nil {
				s.log.Warn("checkout: schedule status check after webhook", "session", sess.ID, "err", err)
			}
			return nil, nil
		}
		return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: abi.OpReadCallback, Err: out.Error}
	}
	if out.Payment == nil {
		return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: abi.OpReadCallback,
			Cause: errors.New("output has no payment")}
	}
	sess, err = s.applyMessage(ctx, sess.ID, sess, out.Payment, "webhook "+ev.Name, digest)
	if err != nil {
		return nil, err
	}
	return s.afterWebhook(ctx, sess, ev.Name), nil
}

// afterWebhook makes the session due for a status check after a money event, which carries one
// operation's amount where the session needs the aggregate.
func (s *Service) afterWebhook(ctx context.Context, sess *payment.Session, event string) *payment.Session {
	if moneyEvents[event] && !sess.State.Final() {
		if err := s.cfg.Store.SchedulePoll(ctx, sess.ID, s.now()); err != nil {
			s.log.Warn("checkout: schedule status check after webhook", "session", sess.ID, "err", err)
		}
	}
	return sess
}

// checkNamedPayment makes the session an unverified delivery names due for a status check, so that a
// real event whose delivery failed verification (a rotated secret, a clock off) is still picked up. The
// body is not trusted beyond the reference's shape; a final session is left alone.
func (s *Service) checkNamedPayment(ctx context.Context, merchant string, body []byte) {
	var ev struct {
		Reference string `json:"reference"`
	}
	if json.Unmarshal(body, &ev) != nil || !eventReference.MatchString(ev.Reference) {
		return
	}
	sess, err := s.cfg.Store.GetByProviderReference(ctx, merchant, ev.Reference)
	if err != nil || sess.State.Final() {
		return
	}
	if err := s.cfg.Store.SchedulePoll(ctx, sess.ID, s.now()); err != nil {
		s.log.Warn("checkout: schedule status check after unverified webhook", "session", sess.ID, "err", err)
	}
}

package checkout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/fence"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/plugin/abi"
)

// This file holds the exactly-once machinery: every money operation is recorded in the session before it
// is sent (payment.ProviderOp, with the request id the provider deduplicates on), a lost answer leaves it
// in doubt until a resend with the same id or a status check settles it, and the notices a change causes
// are written with the change (payment.Notice) and relayed to the delivery queue after. RATIONALE.md,
// "Why money operations are recorded before they are sent", explains the choices.

// outcome classifies what one send of a provider operation tells about it.
type outcome int

const (
	// outcomeDone: the provider answered 2xx and the plugin read the answer.
	outcomeDone outcome = iota
	// outcomeRefused: the provider refused it (a 4xx that says nothing happened), or kasse never sent it.
	outcomeRefused
	// outcomeUnknown: no answer, a timeout, 5xx, 429, or an answer kasse could not read.
	outcomeUnknown
)

// classify sorts the error of a send-and-read into an outcome.
func classify(err error) outcome {
	if err == nil {
		return outcomeDone
	}
	var pe *ProviderError
	if errors.As(err, &pe) {
		switch {
		case pe.Status == 0, pe.Status >= 500, pe.Status == http.StatusTooManyRequests,
			pe.Status == http.StatusRequestTimeout, pe.Status == http.StatusConflict && pe.Retryable:
			return outcomeUnknown
		case pe.Status >= 400:
			return outcomeRefused
		}
		return outcomeUnknown
	}
	var ple *PluginError
	if errors.As(err, &ple) && ple.Op == "send" {
		// The host refused to send what the plugin built: nothing left kasse.
		return outcomeRefused
	}
	var fe *fence.Error
	if errors.As(err, &fe) {
		// The plugin's reading of the answer breaks the host's rules (a redirect to a foreign host): the
		// checkout fails closed, whatever the provider did.
		return outcomeRefused
	}
	return outcomeUnknown
}

// keyDigest is what a session records of a shop's Idempotency-Key: enough to recognise a retry.
func keyDigest(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:12])
}

// nextCheck is when the reconciler must look at cur next: soon for an operation in doubt or notices not
// yet relayed, on the poll schedule while pending, (verify) once after a money operation to check that
// kasse's amounts match the provider's, and while the session's money can still move (watchAt). Zero
// when nothing is needed.
func (s *Service) nextCheck(cur *payment.Session, now time.Time, verify bool) time.Time {
	var t time.Time
	earliest := func(c time.Time) {
		if t.IsZero() || c.Before(t) {
			t = c
		}
	}
	if op := cur.InDoubt(); op != nil {
		earliest(now.Add(s.cfg.RetryInDoubt))
	}
	if len(cur.Outbox) > 0 {
		earliest(now.Add(s.cfg.RelayRetry))
	}
	if cur.State == payment.StatePending {
		if cur.NextCheckAt.After(now) {
			earliest(cur.NextCheckAt)
		} else {
			earliest(now.Add(s.cfg.FirstPoll))
		}
	}
	if verify {
		earliest(now.Add(s.cfg.VerifyAfter))
	}
	if w := s.watchAt(cur, now); !w.IsZero() {
		earliest(w)
	}
	return t.UTC()
}

// watchAt is when to check again an authorized or captured session whose money last moved less than
// WatchFor ago: VerifyAfter after the move, then at doubling intervals (1m, 2m, 4m, ... by default, six
// checks in the first hour). Zero for other sessions and once the window has passed. Money can move
// without kasse hearing of it (the merchant captures or refunds in the Vipps portal; a Redis failover
// takes back a write kasse acted on), and these checks find it (converge).
func (s *Service) watchAt(cur *payment.Session, now time.Time) time.Time {
	if cur.State != payment.StateAuthorized && cur.State != payment.StateCaptured {
		return time.Time{}
	}
	since := now.Sub(lastMoneyMove(cur))
	if since >= s.cfg.WatchFor {
		return time.Time{}
	}
	return now.Add(max(since, s.cfg.VerifyAfter))
}

// lastMoneyMove is when the session's amounts or state last changed: its last state change, divergence
// or settled operation (not a platform update's delivery, which may come hours later).
func lastMoneyMove(cur *payment.Session) time.Time {
	last := cur.CreatedAt
	for i := len(cur.History) - 1; i >= 0; i-- {
		if e := cur.History[i]; e.From != e.To || e.Cause == payment.CauseDiverged {
			last = e.At
			break
		}
	}
	for _, op := range cur.Operations {
		if op.SettledAt.After(last) {
			last = op.SettledAt
		}
	}
	return last
}

// record applies an observation and records the notices it causes, in the caller's Update function.
// It reports whether the session changed.
func (s *Service) record(m config.Merchant, cur *payment.Session, obs payment.Observation, cause string, now time.Time) bool {
	before := *cur
	changed := cur.Apply(obs, cause, now)
	if changed && s.notices(m) {
		cur.RecordNotices(&before, now)
	}
	return changed
}

// notices reports whether changes of m's sessions are written to the outbox: when the merchant has a
// shop platform to tell and the host relays notices.
func (s *Service) notices(m config.Merchant) bool {
	return m.Platform != nil && s.cfg.Relay != nil
}

// relay hands the session's outbox to the delivery queue and removes what was handed over. A failure
// leaves the notices in the outbox; the session's NextCheckAt (written with them) brings the reconciler
// back to try again, so a crash between the change and the queue loses nothing.
func (s *Service) relay(ctx context.Context, sess *payment.Session) *payment.Session {
	if len(sess.Outbox) == 0 || s.cfg.Relay == nil {
		return sess
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.cfg.Relay(ctx, sess, sess.Outbox); err != nil {
		s.log.Warn("checkout: notices not relayed yet; the reconciler retries", "session", sess.ID, "err", err)
		return sess
	}
	ids := make([]string, len(sess.Outbox))
	for i, n := range sess.Outbox {
		ids[i] = n.DeliveryID
	}
	// sess was just read or written: start from it (store.SnapshotUpdater).
	after, err := store.UpdateFrom(ctx, s.cfg.Store, sess.ID, sess, func(cur *payment.Session) (bool, error) {
		if !cur.DropNotices(ids, s.now()) {
			return false, nil
		}
		cur.NextCheckAt = s.nextCheck(cur, s.now(), !cur.NextCheckAt.IsZero() && cur.State != payment.StatePending)
		return true, nil
	})
	if err != nil {
		s.log.Warn("checkout: relayed notices not yet removed from the outbox; they may be delivered again",
			"session", sess.ID, "err", err)
		return sess
	}
	return after
}

// operate records a money operation on the session, sends it and applies its outcome. key is the
// digest of the shop's Idempotency-Key, if any. snap, if not nil, is the session as the caller has just
// read it, which saves reading it again.
func (s *Service) operate(ctx context.Context, sessID string, snap *payment.Session, kind string, amount int64, text, key string,
	check func(cur *payment.Session) (int64, error)) (*payment.Session, error) {
	sess := snap
	var err error
	if sess == nil || sess.ID != sessID {
		if sess, err = s.Get(ctx, sessID); err != nil {
			return nil, err
		}
	}
	if op := sess.OpByKey(key); op != nil && op.Kind == kind {
		// The shop's retry of a request kasse already recorded: never a second operation.
		switch op.Status {
		case payment.OpSucceeded:
			return sess, nil
		case payment.OpFailed:
			return sess, &ProviderError{Status: http.StatusUnprocessableEntity,
				Detail: "this request was refused before: " + op.LastError}
		}
		return s.resolve(ctx, sess, op.ID)
	}
	if op := sess.InDoubt(); op != nil {
		return sess, &InDoubtError{Session: sess.ID, Operation: op.ID, Kind: op.Kind}
	}
	if amount, err = check(sess); err != nil {
		return sess, &StateError{Session: sess.ID, State: sess.State, Err: err}
	}
	m, ok := s.cfg.Merchants.Merchant(sess.Merchant)
	if !ok {
		return nil, &UnknownMerchantError{Merchant: sess.Merchant}
	}
	plugin, ok := s.pluginFor(sess)
	if !ok {
		return nil, &UnavailableError{What: "payment plugin " + sess.Plugin}
	}
	if text == "" {
		text = defaultText(Operation(kind), sess)
	}
	buildOp, _ := opCodes(kind)
	opIn := &abi.Operation{Amount: amount, Text: text}
	// Build first: a plugin that fails here leaves nothing behind.
	req, err := s.build(ctx, plugin, buildOp, m, sess, opIn)
	if err != nil {
		return nil, err
	}
	op := payment.ProviderOp{ID: newRequestID(), Kind: kind, Amount: amount, Text: text,
		Status: payment.OpInDoubt, Attempts: 1, Key: key}
	// Record the operation starting from the session just read (store.SnapshotUpdater).
	sess, err = store.UpdateFrom(ctx, s.cfg.Store, sessID, sess, func(cur *payment.Session) (bool, error) {
		if d := cur.InDoubt(); d != nil {
			return false, &InDoubtError{Session: cur.ID, Operation: d.ID, Kind: d.Kind}
		}
		got, err := check(cur)
		if err != nil {
			return false, &StateError{Session: cur.ID, State: cur.State, Err: err}
		}
		if got != amount {
			return false, &StateError{Session: cur.ID, State: cur.State,
				Err: fmt.Errorf("%s: the session changed meanwhile: %w", kind, payment.ErrTransition)}
		}
		now := s.now().UTC()
		op.At = now
		cur.Operations = append(cur.Operations, op)
		cur.NextCheckAt = s.nextCheck(cur, now, false)
		cur.UpdatedAt = now
		return true, nil
	})
	if err != nil {
		return nil, unwrapStoreFnError(err)
	}
	return s.send1(ctx, sess, m, plugin, op.ID, req, false)
}

// unwrapStoreFnError returns the checkout error an Update function returned, without the store's
// wrapping, so the API maps it; other errors pass through.
func unwrapStoreFnError(err error) error {
	var ide *InDoubtError
	if errors.As(err, &ide) {
		return ide
	}
	var se *StateError
	if errors.As(err, &se) {
		return se
	}
	return err
}

// opCodes returns the plugin's build and read operations for an operation kind.
func opCodes(kind string) (build, read abi.Op) {
	switch kind {
	case payment.OpKindCapture:
		return abi.OpBuildCapture, abi.OpReadCapture
	case payment.OpKindRefund:
		return abi.OpBuildRefund, abi.OpReadRefund
	case payment.OpKindCancel:
		return abi.OpBuildCancel, abi.OpReadCancel
	}
	return abi.OpBuildInitiate, abi.OpReadInitiate
}

// send1 sends the recorded operation opID once with its request id and applies what the answer says.
// resend says the operation was (or may have been) sent before.
func (s *Service) send1(ctx context.Context, sess *payment.Session, m config.Merchant, plugin Plugin, opID string, req *abi.Request, resend bool) (*payment.Session, error) {
	op := sess.Op(opID)
	_, readOp := opCodes(op.Kind)
	opIn := &abi.Operation{Amount: op.Amount, Text: op.Text}
	resp, err := s.send(ctx, plugin, m, req, op.ID, sess)
	var pay *abi.Payment
	if err == nil {
		pay, err = s.read(ctx, plugin, readOp, m, sess, opIn, resp)
	}
	if (resend || op.Attempts > 1) && op.Kind != payment.OpKindInitiate && classify(err) == outcomeRefused {
		// A resend refused: the first send may have been carried out (an eCom cancel has no request id
		// to deduplicate on, so its resend is refused as "already cancelled"). Only the payment's state
		// can tell.
		return s.settleByStatus(ctx, sess, m, plugin, op, err)
	}
	return s.settle(ctx, m, sess.ID, sess, opID, pay, err)
}

// settleByStatus settles an operation in doubt whose resend the provider refused, from the payment's
// state: the operation happened if the provider shows its effect. kasse's amounts become the provider's.
func (s *Service) settleByStatus(ctx context.Context, sess *payment.Session, m config.Merchant, plugin Plugin,
	op *payment.ProviderOp, refusal error) (*payment.Session, error) {
	req, err := s.build(ctx, plugin, abi.OpBuildDetails, m, sess, nil)
	if err != nil {
		return sess, err
	}
	resp, err := s.send(ctx, plugin, m, req, "", sess)
	var pay *abi.Payment
	if err == nil {
		pay, err = s.read(ctx, plugin, abi.OpReadDetails, m, sess, nil, resp)
	}
	if err != nil {
		// Still not known; the reconciler tries again.
		return s.settle(ctx, m, sess.ID, nil, op.ID, nil, &ProviderError{Detail: "status check after a refused resend: " + err.Error(), Cause: err})
	}
	opID, kind, amount := op.ID, op.Kind, op.Amount
	ctx = context.WithoutCancel(ctx)
	var before payment.Session
	happened := false
	sess, err = s.cfg.Store.Update(ctx, sess.ID, func(cur *payment.Session) (bool, error) {
		o := cur.Op(opID)
		if o == nil || o.Status != payment.OpInDoubt {
			return false, nil
		}
		before = *cur
		now := s.now().UTC()
		switch kind {
		case payment.OpKindCancel:
			happened = payment.State(pay.State) == payment.StateCancelled || pay.CancelledAmount > cur.CancelledAmount
		case payment.OpKindCapture:
			happened = pay.CapturedAmount >= cur.CapturedAmount+amount
		case payment.OpKindRefund:
			happened = pay.RefundedAmount >= cur.RefundedAmount+amount
		}
		status, detail := payment.OpFailed, "the provider refused the resend ("+reasonOf(refusal)+") and its status shows no effect"
		if happened {
			status, detail = payment.OpSucceeded, "the provider refused the resend ("+reasonOf(refusal)+"); its status shows the first send was carried out"
		}
		cur.SettleOp(opID, status, detail, now)
		if pay.AuthorizedAmount >= 0 && pay.CapturedAmount >= 0 && pay.RefundedAmount >= 0 && pay.CancelledAmount >= 0 {
			if cur.Converge(payment.Amounts{Authorized: pay.AuthorizedAmount, Captured: pay.CapturedAmount,
				Refunded: pay.RefundedAmount, Cancelled: pay.CancelledAmount}, payment.State(pay.State), now) && s.notices(m) {
				cur.RecordNotices(&before, now)
			}
		} else {
			s.record(m, cur, observationOf(pay), kind+" (status check)", now)
		}
		cur.NextCheckAt = s.nextCheck(cur, now, false)
		cur.UpdatedAt = now
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("checkout: settle %s on session[%s] by status: %w", opID, before.ID, err)
	}
	s.notify(ctx, &before, sess)
	sess = s.relay(ctx, sess)
	if happened {
		return sess, nil
	}
	return sess, refusal
}

// settle records the outcome of one attempt of operation opID: applied on success, failed on a refusal,
// still in doubt otherwise (with the attempt counted). It returns the session and, unless the operation
// succeeded, the error the caller answers with.
//
// snap, if not nil, is the session as the caller last read or wrote it, which the update starts from (see
// store.SnapshotUpdater).
func (s *Service) settle(ctx context.Context, m config.Merchant, id string, snap *payment.Session, opID string, pay *abi.Payment, sendErr error) (*payment.Session, error) {
	ctx = context.WithoutCancel(ctx) // the outcome must be recorded even if the shop hung up
	result := classify(sendErr)
	var kind string
	var before payment.Session
	changed := false
	sess, err := store.UpdateFrom(ctx, s.cfg.Store, id, snap, func(cur *payment.Session) (bool, error) {
		op := cur.Op(opID)
		if op == nil {
			return false, nil
		}
		if op.Status != payment.OpInDoubt {
			// Settled meanwhile: by another attempt, or, for an initiate, by a callback or webhook that
			// arrived before its answer. The answer still carries what only it knows: the redirect URL.
			if op.Kind != payment.OpKindInitiate || result != outcomeDone || cur.RedirectURL != "" || pay.RedirectURL == "" {
				return false, nil
			}
			cur.RedirectURL = pay.RedirectURL
			if pay.ProviderReference != "" {
				cur.ProviderReference = pay.ProviderReference
			}
			cur.UpdatedAt = s.now().UTC()
			return true, nil
		}
		kind = op.Kind
		before = *cur
		now := s.now().UTC()
		switch result {
		case outcomeDone:
			cur.SettleOp(opID, payment.OpSucceeded, "", now)
			if kind == payment.OpKindInitiate {
				cur.RedirectURL = pay.RedirectURL
				if pay.ProviderReference != "" {
					cur.ProviderReference = pay.ProviderReference
				}
			}
			s.record(m, cur, observationOf(pay), kind, now)
			ApplyExpressDetails(cur, pay)
			changed = true
		case outcomeRefused:
			cur.SettleOp(opID, payment.OpFailed, reasonOf(sendErr), now)
			if kind == payment.OpKindInitiate {
				s.record(m, cur, payment.Observation{State: payment.StateFailed, AuthorizedAmount: -1,
					CapturedAmount: -1, RefundedAmount: -1, CancelledAmount: -1,
					Reason: "initiate failed: " + reasonOf(sendErr)}, "initiate failed", now)
			}
			changed = true
		default:
			op.Attempts++
			op.LastError = reasonOf(sendErr)
		}
		cur.NextCheckAt = s.nextCheck(cur, now, result == outcomeDone && kind != payment.OpKindInitiate)
		cur.UpdatedAt = now
		return true, nil
	})
	if err != nil {
		if sendErr != nil {
			return nil, errors.Join(sendErr, err)
		}
		return nil, fmt.Errorf("checkout: record outcome of %s on session[%s]: %w", opID, id, err)
	}
	if changed {
		if sess.State != before.State {
			s.log.Info("checkout state changed", "session", id, "from", before.State, "to", sess.State, "cause", kind)
		}
		s.notify(ctx, &before, sess)
	}
	sess = s.relay(ctx, sess)
	switch result {
	case outcomeDone:
		return sess, nil
	case outcomeRefused:
		return sess, sendErr
	}
	if op := sess.Op(opID); op != nil && op.Status != payment.OpInDoubt {
		// Another attempt settled it while this one waited.
		if op.Status == payment.OpSucceeded {
			return sess, nil
		}
		return sess, &ProviderError{Status: http.StatusUnprocessableEntity, Detail: op.LastError}
	}
	s.log.Warn("checkout: provider operation in doubt; it is retried with the same request id",
		"session", id, "operation", opID, "kind", kind, "err", sendErr)
	return sess, &OutcomeUnknownError{Session: id, Operation: opID, Kind: kind, Cause: sendErr}
}

// observationOf turns a plugin's reading of a provider answer into an observation.
func observationOf(pay *abi.Payment) payment.Observation {
	return payment.Observation{State: payment.State(pay.State), AuthorizedAmount: pay.AuthorizedAmount,
		CapturedAmount: pay.CapturedAmount, RefundedAmount: pay.RefundedAmount,
		CancelledAmount: pay.CancelledAmount, Reason: pay.Reason}
}

// resolve settles the session's operation opID, which is in doubt: a capture, refund or cancel is sent
// again with the same request id (the provider applies it at most once and answers with its result); an
// initiate, which eCom does not deduplicate, is settled by a status check once it is old enough that a
// slow first send can no longer arrive.
func (s *Service) resolve(ctx context.Context, sess *payment.Session, opID string) (*payment.Session, error) {
	op := sess.Op(opID)
	if op == nil || op.Status != payment.OpInDoubt {
		return sess, nil
	}
	m, ok := s.cfg.Merchants.Merchant(sess.Merchant)
	if !ok {
		return nil, &UnknownMerchantError{Merchant: sess.Merchant}
	}
	plugin, ok := s.pluginFor(sess)
	if !ok {
		return nil, &UnavailableError{What: "payment plugin " + sess.Plugin}
	}
	if op.Kind == payment.OpKindInitiate {
		return s.resolveInitiate(ctx, sess, m, plugin, op)
	}
	buildOp, _ := opCodes(op.Kind)
	req, err := s.build(ctx, plugin, buildOp, m, sess, &abi.Operation{Amount: op.Amount, Text: op.Text})
	if err != nil {
		return sess, err
	}
	s.log.Info("checkout: sending an operation in doubt again with its request id", "session", sess.ID,
		"operation", op.ID, "kind", op.Kind, "attempt", op.Attempts+1)
	return s.send1(ctx, sess, m, plugin, op.ID, req, true)
}

// resolveInitiate settles an initiate in doubt by asking the provider whether the payment exists.
func (s *Service) resolveInitiate(ctx context.Context, sess *payment.Session, m config.Merchant, plugin Plugin, op *payment.ProviderOp) (*payment.Session, error) {
	if s.now().Sub(op.At) < s.cfg.InitiateGrace {
		return sess, &OutcomeUnknownError{Session: sess.ID, Operation: op.ID, Kind: op.Kind}
	}
	req, err := s.build(ctx, plugin, abi.OpBuildDetails, m, sess, nil)
	if err != nil {
		return sess, err
	}
	resp, err := s.send(ctx, plugin, m, req, "", sess)
	var pay *abi.Payment
	if err == nil {
		pay, err = s.read(ctx, plugin, abi.OpReadDetails, m, sess, nil, resp)
	}
	var pe *ProviderError
	if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
		// The provider never heard of it: the initiate never arrived.
		return s.settle(ctx, m, sess.ID, nil, op.ID, nil, &ProviderError{Status: http.StatusNotFound,
			Detail: "the payment was never started at the provider"})
	}
	if err != nil {
		return s.settle(ctx, m, sess.ID, nil, op.ID, nil, err)
	}
	// It exists: the initiate went through. Its answer (the redirect URL) is lost; the state is the
	// provider's.
	return s.settle(ctx, m, sess.ID, nil, op.ID, pay, nil)
}

package hooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/internal/adapterview"
	"github.com/kassehq/kasse/host/payment"
)

// Check checks every merchant's platform against the adapters in set: the kind must be registered, and
// the adapter's Validator, if any, must accept the merchant. Problems come back as a *config.Error with
// JSON pointers into the config file.
func Check(set []adapters.Info, cfg *config.Config) error {
	byID := adapters.Instances(set)
	var problems []config.Problem
	ids := make([]string, 0, len(cfg.Merchants))
	for id := range cfg.Merchants {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		m := cfg.Merchants[id]
		if m.Platform == nil {
			continue
		}
		base := "/merchants/" + strings.ReplaceAll(strings.ReplaceAll(id, "~", "~0"), "/", "~1") + "/platform"
		inst, ok := byID[m.Platform.Kind]
		if !ok {
			known := make([]string, 0, len(set))
			for _, info := range set {
				known = append(known, info.ID)
			}
			problems = append(problems, config.Problem{Pointer: base + "/kind", Detail: fmt.Sprintf(
				"no adapter %q is registered (registered: %s)", m.Platform.Kind, strings.Join(known, ", "))})
			continue
		}
		v, ok := inst.Adapter.(adapters.Validator)
		if !ok {
			continue
		}
		err := v.Validate(adapterview.Merchant(m))
		if err == nil {
			continue
		}
		var errs []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		} else {
			errs = []error{err}
		}
		for _, e := range errs {
			var fe *adapters.FieldError
			if errors.As(e, &fe) {
				problems = append(problems, config.Problem{Pointer: base + "/" + fe.Field,
					Detail: fmt.Sprintf("merchant %s: %s", id, fe.Detail)})
			} else {
				problems = append(problems, config.Problem{Pointer: base,
					Detail: fmt.Sprintf("merchant %s: %v", id, e)})
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("hooks: check adapters: %w", &config.Error{Problems: problems})
}

// Checkouts is what the hooks handler needs from the checkout service. The host implements it over
// *checkout.Service.
type Checkouts interface {
	// Create starts the payment for a checkout; see checkout.Service.Create.
	Create(ctx context.Context, co payment.Checkout, idempotencyKey string) (*payment.Session, bool, error)
	// CreateExpress starts an Express Checkout payment for a cart; see checkout.Service.CreateExpress. It
	// fails with a *checkout.ExpressDisabledError when the merchant's expressCheckout is off.
	CreateExpress(ctx context.Context, co payment.Checkout, idempotencyKey string) (*payment.Session, bool, error)
	// ModifyFrom captures, refunds or cancels ("capture", "refund", "cancel") starting from sess, the
	// session as Lookup has just returned it (unchanged since), so that the operation does not read it
	// again; the store's write still fails over to a fresh read if it changed meanwhile. See
	// checkout.Service.ModifyFrom.
	ModifyFrom(ctx context.Context, sess *payment.Session, op string, amount int64, text, idempotencyKey string) (*payment.Session, error)
	// Lookup returns the newest session created for the shop's order reference at this merchant
	// (store.ErrNotFound wrapped if none).
	Lookup(ctx context.Context, merchant, reference string) (*payment.Session, error)
}

// Merchants finds a merchant's current configuration; *config.Config satisfies it. The hooks hand an
// adapter only adapterview.Merchant of it.
type Merchants interface {
	Merchant(id string) (config.Merchant, bool)
}

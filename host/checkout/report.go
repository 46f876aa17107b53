package checkout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/plugin/abi"
)

// FindLedger returns the id of the Report API ledger that settles the merchant's sales unit: the ledger
// whose recipient handles name the merchant serial number ("api:{msn}"), or the only ledger the
// merchant's credentials see. It implements settlement.Source with the merchant's plugin.
func (s *Service) FindLedger(ctx context.Context, merchant string) (string, error) {
	var all []abi.Ledger
	q := abi.ReportQuery{}
	for range 100 {
		out, err := s.report(ctx, merchant, abi.OpBuildLedgers, abi.OpReadLedgers, q)
		if err != nil {
			return "", err
		}
		if out.Ledgers == nil {
			return "", errors.New("checkout: read_ledgers gave no ledgers")
		}
		all = append(all, out.Ledgers.Ledgers...)
		if out.Ledgers.Cursor == "" || out.Ledgers.Cursor == q.Cursor {
			break
		}
		q.Cursor = out.Ledgers.Cursor
	}
	m, _ := s.cfg.Merchants.Merchant(merchant)
	for _, l := range all {
		if slices.Contains(l.RecipientHandles, "api:"+m.Vipps.MerchantSerialNumber) {
			return l.LedgerID, nil
		}
	}
	if len(all) == 1 {
		return all[0].LedgerID, nil
	}
	return "", fmt.Errorf("checkout: no ledger settles merchant %s (msn %s) among %d ledgers", merchant,
		m.Vipps.MerchantSerialNumber, len(all))
}

// FeedPage returns the page of a ledger account's feed after q.Cursor. It implements settlement.Source.
func (s *Service) FeedPage(ctx context.Context, merchant string, q abi.ReportQuery) (*abi.ReportPage, error) {
	out, err := s.report(ctx, merchant, abi.OpBuildReportFeed, abi.OpReadReportFeed, q)
	if err != nil {
		return nil, err
	}
	if out.Report == nil {
		return nil, errors.New("checkout: read_report_feed gave no report")
	}
	return out.Report, nil
}

// RelayNotices hands the session's outbox to the platform delivery queue and removes what was handed
// over, like every change the service makes itself; the settlement follower calls it after writing a
// settled notice. It returns the session as stored after.
func (s *Service) RelayNotices(ctx context.Context, sess *payment.Session) *payment.Session {
	return s.relay(ctx, sess)
}

// report runs a report operation pair: the build operation's request is sent to the provider and its
// answer read by the read operation. The query rides in Input.Callback (see abi.ReportOps).
func (s *Service) report(ctx context.Context, merchant string, build, read abi.Op, q abi.ReportQuery) (*abi.Output, error) {
	m, ok := s.cfg.Merchants.Merchant(merchant)
	if !ok {
		return nil, fmt.Errorf("checkout: report: unknown merchant %q", merchant)
	}
	plugin, ok := s.cfg.Plugins.Plugin(m.Plugin)
	if !ok {
		return nil, &UnavailableError{What: "payment plugin " + m.Plugin}
	}
	query, err := json.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("checkout: encode report query: %w", err)
	}
	in := &abi.Input{Op: build, Callback: query, Merchant: abi.Merchant{ID: m.ID,
		MerchantSerialNumber: m.Vipps.MerchantSerialNumber, TransactionTextPrefix: m.TransactionTextPrefix}}
	req, err := s.buildFrom(ctx, plugin, in)
	if err != nil {
		return nil, err
	}
	resp, err := s.send(ctx, plugin, m, req, "", &payment.Session{})
	if err != nil {
		return nil, err
	}
	in.Op, in.Response = read, resp
	// A page holds up to a thousand entries: the read runs under the plugin runtime's bulk limits.
	out, err := s.call(plugins.WithBulk(ctx), plugin, in)
	if err != nil {
		return nil, err
	}
	if !out.OK {
		if out.Error != nil && out.Error.Code == "provider_error" {
			return nil, &ProviderError{Status: out.Error.ProviderStatus, Detail: out.Error.Message,
				Errors: out.Error.ProviderErrors, Retryable: out.Error.Retryable}
		}
		return nil, &PluginError{Plugin: plugin.Name(), Version: plugin.Version(), Op: read, Err: out.Error}
	}
	return out, nil
}

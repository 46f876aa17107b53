package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/settlement"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/host/upgrade"
)

// pageData is what every page template gets.
type pageData struct {
	Title    string
	Nav      string
	Operator *operator
	CSRF     string
	// Error is a message for the whole page; Errors are messages by form field name.
	Error  string
	Notice string
	Errors map[string]string
	// Form holds values to put back into a form after an error.
	Form map[string]string
	Data any
}

var funcs = template.FuncMap{
	"money": money,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	},
	"ago":  func(d time.Duration) string { return d.Round(time.Second).String() },
	"join": strings.Join,
	"latency": func(d time.Duration) string {
		if d == 0 {
			return "–"
		}
		return d.Round(time.Microsecond).String()
	},
}

// money formats minor units as kroner with a comma, as Norwegians write them: 49900 -> "499,00".
func money(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d,%02d", sign, minor/100, minor%100)
}

// parseMoney reads an amount in kroner ("200", "200,5", "1 200,50", "200.50") as minor units, exactly.
func parseMoney(s string) (int64, error) {
	s = strings.NewReplacer(" ", "", "\u00a0", "").Replace(strings.TrimSpace(s))
	s = strings.Replace(s, ",", ".", 1)
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || strings.ContainsFunc(whole+frac, func(r rune) bool { return r < '0' || r > '9' }) || len(whole) > 13 {
		return 0, errors.New("write the amount in kroner with at most two decimals, e.g. 200 or 199,50")
	}
	n, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt((frac + "00")[:2], 10, 64)
	if v := n*100 + f; v > 0 {
		return v, nil
	}
	return 0, errors.New("the amount must be more than 0")
}

// render executes a page; a template error becomes a plain 500, never half a page.
func (c *Console) render(ctx *gin.Context, status int, name string, op *operator, d pageData) {
	if op == nil {
		if v, ok := ctx.Get("operator"); ok {
			o := v.(operator)
			op = &o
		}
	}
	if op != nil {
		d.Operator = op
		if d.CSRF == "" {
			d.CSRF = c.csrf(op.nonce)
		}
	}
	if d.Nav == "" {
		d.Nav = name
	}
	var buf bytes.Buffer
	t, ok := c.tmpl[name]
	if !ok {
		ctx.String(http.StatusInternalServerError, "console: no page %q", name)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		ctx.String(http.StatusInternalServerError, "console: the page could not be rendered")
		return
	}
	ctx.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

func (c *Console) merchants() []string {
	cfg := c.cfg.Config()
	ids := make([]string, 0, len(cfg.Merchants))
	for id := range cfg.Merchants {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Attention reasons.
const (
	attnInDoubt  = "operation in doubt"
	attnDiverged = "diverged from the provider"
	attnPending  = "pending too long"
	attnSettle   = "settlement mismatch"
	// attnOrderPaid: the session took money while another session was its shop order's current
	// checkout, or the order's current session, when another one took money. The order may be paid
	// twice, and the shop's capture or cancel reaches only the current one.
	attnOrderPaid = "order paid outside its current session"
)

// attention lists why a session needs an operator's eye.
func (c *Console) attention(s *payment.Session, now time.Time) []string {
	var why []string
	if s.InDoubt() != nil {
		why = append(why, attnInDoubt)
	}
	for _, e := range s.History {
		if e.Cause == "diverged" {
			why = append(why, attnDiverged)
			break
		}
	}
	for _, e := range s.History {
		if e.Cause == payment.CausePaidNotCurrent || e.Cause == payment.CauseOrderPaidElsewhere {
			why = append(why, attnOrderPaid)
			break
		}
	}
	if s.State == payment.StatePending && now.Sub(s.CreatedAt) > time.Duration(c.cfg.Config().Reconciler.PendingTimeout) {
		why = append(why, attnPending)
	}
	if s.Settlement != nil && s.Settlement.Mismatch != "" {
		why = append(why, attnSettle)
	}
	return why
}

type paymentRow struct {
	S         *payment.Session
	Attention []string
}

type paymentsView struct {
	Merchants []string
	States    []payment.State
	Counts    []stateCount
	Total     int64
	Rows      []paymentRow
	Next      string
	NextQuery string
	Scanned   int
	Searched  bool
	// Filtered is set when a filter besides the merchant is on (or wrong): the filter form starts open.
	Filtered bool
}

type stateCount struct {
	State payment.State
	N     int64
}

const dateLayout = "2006-01-02"

// payments lists a merchant's payments with filters, or finds payments by id or reference.
func (c *Console) payments(ctx *gin.Context) {
	merchants := c.merchants()
	f := map[string]string{}
	for _, k := range []string{"merchant", "state", "from", "to", "version", "attention", "q", "cursor"} {
		f[k] = strings.TrimSpace(ctx.Query(k))
	}
	if f["merchant"] == "" && len(merchants) > 0 {
		f["merchant"] = merchants[0]
	}
	v := paymentsView{Merchants: merchants, States: payment.States,
		Filtered: f["state"] != "" || f["from"] != "" || f["to"] != "" || f["version"] != "" || f["attention"] != ""}
	d := pageData{Title: "Payments", Form: f, Errors: map[string]string{}, Data: &v}
	if !slices.Contains(merchants, f["merchant"]) {
		d.Errors["merchant"] = "no such merchant"
	}
	if f["state"] != "" && !payment.State(f["state"]).Valid() {
		d.Errors["state"] = "no such state"
	}
	var from, to time.Time
	var err error
	if f["from"] != "" {
		if from, err = time.Parse(dateLayout, f["from"]); err != nil {
			d.Errors["from"] = "write the date as YYYY-MM-DD"
		}
	}
	if f["to"] != "" {
		if to, err = time.Parse(dateLayout, f["to"]); err != nil {
			d.Errors["to"] = "write the date as YYYY-MM-DD"
		} else {
			to = to.AddDate(0, 0, 1) // the whole day
		}
	}
	if len(d.Errors) > 0 {
		v.Filtered = true
		c.render(ctx, http.StatusBadRequest, "payments", nil, d)
		return
	}
	rctx := ctx.Request.Context()
	if q := f["q"]; q != "" {
		v.Searched = true
		found, err := c.search(rctx, q, merchants)
		if err != nil {
			d.Error = "The search failed: " + err.Error()
			c.render(ctx, http.StatusServiceUnavailable, "payments", nil, d)
			return
		}
		if len(found) == 1 {
			ctx.Redirect(http.StatusSeeOther, Prefix+"/payments/"+found[0].ID)
			return
		}
		now := c.cfg.Now()
		for _, s := range found {
			v.Rows = append(v.Rows, paymentRow{S: s, Attention: c.attention(s, now)})
		}
		c.render(ctx, http.StatusOK, "payments", nil, d)
		return
	}
	now := c.cfg.Now()
	query := store.ListQuery{Merchant: f["merchant"], State: payment.State(f["state"]), From: from, To: to,
		Cursor: f["cursor"], Limit: 25}
	version, attn := f["version"], f["attention"] != ""
	if version != "" || attn {
		query.Match = func(s *payment.Session) bool {
			return (version == "" || s.PluginVersion == version || s.Plugin+"@"+s.PluginVersion == version) &&
				(!attn || len(c.attention(s, now)) > 0)
		}
	}
	page, err := c.lister.ListSessions(rctx, query)
	if errors.Is(err, store.ErrBadCursor) {
		d.Errors["cursor"] = "this page link is not valid; start from the first page"
		c.render(ctx, http.StatusBadRequest, "payments", nil, d)
		return
	}
	if err != nil {
		d.Error = "The session store did not answer: " + err.Error()
		c.render(ctx, http.StatusServiceUnavailable, "payments", nil, d)
		return
	}
	counts, err := c.lister.CountSessions(rctx, f["merchant"], from, to)
	if err != nil {
		d.Error = "The session store did not answer: " + err.Error()
		c.render(ctx, http.StatusServiceUnavailable, "payments", nil, d)
		return
	}
	for _, st := range payment.States {
		v.Counts = append(v.Counts, stateCount{st, counts[st]})
		v.Total += counts[st]
	}
	for _, s := range page.Sessions {
		v.Rows = append(v.Rows, paymentRow{S: s, Attention: c.attention(s, now)})
	}
	v.Scanned = page.Scanned
	if page.Next != "" {
		q := ctx.Request.URL.Query()
		q.Set("cursor", page.Next)
		v.NextQuery = q.Encode()
	}
	c.render(ctx, http.StatusOK, "payments", nil, d)
}

// search finds sessions by kasse id, shop order reference or provider (Vipps order) id, across merchants.
func (c *Console) search(ctx context.Context, q string, merchants []string) ([]*payment.Session, error) {
	if s, err := c.cfg.Service.Get(ctx, q); err == nil {
		return []*payment.Session{s}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var out []*payment.Session
	seen := map[string]bool{}
	for _, m := range merchants {
		for _, get := range []func(context.Context, string, string) (*payment.Session, error){
			c.cfg.Store.GetByReference, c.cfg.Store.GetByProviderReference} {
			s, err := get(ctx, m, q)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if !seen[s.ID] {
				seen[s.ID] = true
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// entry is one line of a payment's timeline.
type entry struct {
	At     time.Time
	Kind   string
	What   string
	Detail string
}

type paymentView struct {
	S           *payment.Session
	Attention   []string
	Timeline    []entry
	Capturable  int64
	Refundable  int64
	CanCancel   bool
	ConsentGone bool
}

func (c *Console) payment(ctx *gin.Context) {
	s, err := c.cfg.Service.Get(ctx.Request.Context(), ctx.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		c.render(ctx, http.StatusNotFound, "error", nil, pageData{Title: "No such payment", Nav: "payments",
			Error: "There is no payment with id " + ctx.Param("id") + " (it may have expired)."})
		return
	}
	if err != nil {
		c.render(ctx, http.StatusServiceUnavailable, "error", nil, pageData{Title: "Payment", Nav: "payments",
			Error: "The session store did not answer: " + err.Error()})
		return
	}
	d := pageData{Title: "Payment " + s.ID, Nav: "payments", Data: c.paymentView(s), Errors: map[string]string{},
		Form: map[string]string{}}
	if done := ctx.Query("done"); done != "" {
		d.Notice = done
	}
	c.render(ctx, http.StatusOK, "payment", nil, d)
}

func (c *Console) paymentView(s *payment.Session) *paymentView {
	v := &paymentView{S: s, Attention: c.attention(s, c.cfg.Now())}
	if _, err := s.CheckCapture(0); err == nil {
		v.Capturable = s.AuthorizedAmount - s.CapturedAmount - s.CancelledAmount
	}
	if _, err := s.CheckRefund(0); err == nil {
		v.Refundable = s.CapturedAmount - s.RefundedAmount
	}
	v.CanCancel = s.CheckCancel() == nil
	for _, e := range s.History {
		what := e.Cause
		switch {
		case e.From == "" && e.To != "":
			what += ": " + string(e.To)
		case e.From != e.To:
			what += ": " + string(e.From) + " → " + string(e.To)
		}
		if e.Amount != 0 {
			what += " (" + money(e.Amount) + " " + s.Currency + ")"
		}
		if e.Cause == checkout.CauseConsentRemoved {
			v.ConsentGone = true
		}
		v.Timeline = append(v.Timeline, entry{At: e.At, Kind: "state", What: what, Detail: e.Detail})
	}
	for _, op := range s.Operations {
		amount := ""
		if op.Amount != 0 {
			amount = " " + money(op.Amount) + " " + s.Currency
		}
		v.Timeline = append(v.Timeline, entry{At: op.At, Kind: "provider",
			What: "sent " + op.Kind + amount, Detail: fmt.Sprintf("request %s, attempt %d", op.ID, op.Attempts)})
		// A settled operation has its own history entry (payment.Session.SettleOp); one in doubt has none yet.
		if op.Status == payment.OpInDoubt {
			v.Timeline = append(v.Timeline, entry{At: op.At, Kind: "provider",
				What: op.Kind + " in doubt", Detail: "request " + op.ID + ": kasse retries it with the same id" + suffix(op.LastError)})
		}
	}
	for _, n := range s.Outbox {
		v.Timeline = append(v.Timeline, entry{At: n.At, Kind: "notification",
			What:   "platform update " + n.Status + " " + money(n.Amount) + " " + s.Currency + ": waiting for delivery",
			Detail: "delivery " + n.DeliveryID})
	}
	slices.SortStableFunc(v.Timeline, func(a, b entry) int { return a.At.Compare(b.At) })
	return v
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// paymentAction captures, refunds or cancels: the first post shows a confirmation, the second (confirm=yes)
// acts through checkout.Service.Modify with an idempotency key made for that confirmation, so a form sent
// twice acts once.
func (c *Console) paymentAction(ctx *gin.Context) {
	op := ctx.MustGet("operator").(operator)
	rctx := ctx.Request.Context()
	s, err := c.cfg.Service.Get(rctx, ctx.Param("id"))
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, store.ErrNotFound) {
			status = http.StatusNotFound
		}
		c.render(ctx, status, "error", nil, pageData{Title: "Payment", Nav: "payments", Error: err.Error()})
		return
	}
	kind := checkout.Operation(ctx.PostForm("op"))
	form := map[string]string{"op": string(kind), "amount": ctx.PostForm("amount")}
	again := func(status int, field, msg string) {
		c.render(ctx, status, "payment", nil, pageData{Title: "Payment " + s.ID, Nav: "payments",
			Data: c.paymentView(s), Errors: map[string]string{field: msg}, Form: form})
	}
	var amount int64
	switch kind {
	case checkout.OpCapture, checkout.OpRefund:
		if raw := strings.TrimSpace(ctx.PostForm("amount")); raw != "" {
			if amount, err = parseMoney(raw); err != nil {
				again(http.StatusUnprocessableEntity, string(kind)+"-amount", err.Error())
				return
			}
		}
	case checkout.OpCancel:
	default:
		again(http.StatusBadRequest, "op", "unknown action")
		return
	}
	if ctx.PostForm("confirm") != "yes" {
		c.render(ctx, http.StatusOK, "confirm", nil, pageData{Title: "Confirm " + string(kind), Nav: "payments",
			Data: confirmView{Session: s, Op: string(kind), Amount: amount, AmountRaw: ctx.PostForm("amount"),
				Key: randomToken(), Action: Prefix + "/payments/" + s.ID + "/action"}})
		return
	}
	key := ctx.PostForm("key")
	if key == "" || len(key) > 64 {
		again(http.StatusBadRequest, "key", "the confirmation is incomplete; start again")
		return
	}
	after, err := c.cfg.Service.Modify(rctx, s.ID, kind, amount, "", "console:"+key)
	c.log.Info("console: payment action", "operator", op.Name, "remote", ctx.Request.RemoteAddr, "session", s.ID,
		"merchant", s.Merchant, "op", kind, "amount", amount, "ok", err == nil, "err", errString(err))
	if err != nil {
		var ie *checkout.InputError
		var se *checkout.StateError
		var dq *checkout.InDoubtError
		var ou *checkout.OutcomeUnknownError
		switch {
		case errors.As(err, &ie):
			again(http.StatusUnprocessableEntity, string(kind)+"-amount", ie.Detail)
		case errors.As(err, &se):
			again(http.StatusConflict, string(kind)+"-amount", "not possible now: "+se.Err.Error())
		case errors.As(err, &dq), errors.As(err, &ou):
			again(http.StatusConflict, string(kind)+"-amount", err.Error())
		default:
			again(http.StatusBadGateway, string(kind)+"-amount", err.Error())
		}
		return
	}
	done := fmt.Sprintf("%s done: the payment is %s, captured %s, refunded %s", kind, after.State,
		money(after.CapturedAmount), money(after.RefundedAmount))
	ctx.Redirect(http.StatusSeeOther, Prefix+"/payments/"+s.ID+"?done="+urlQuery(done))
}

type confirmView struct {
	Session   *payment.Session
	Op        string
	Amount    int64
	AmountRaw string
	Key       string
	Action    string
	// Plugin action fields.
	Plugin, Version, Percent string
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type pluginView struct {
	S       upgrade.Status
	History []upgrade.Event
	// Choices are the versions an operator may activate or canary.
	Choices []string
}

func (c *Console) plugins(ctx *gin.Context) {
	var views []pluginView
	for _, st := range c.cfg.Plugins.Statuses() {
		h, _ := c.cfg.Plugins.History(st.Plugin)
		slices.Reverse(h)
		if len(h) > 30 {
			h = h[:30]
		}
		pv := pluginView{S: st, History: h}
		for _, v := range st.Versions {
			if v.Version != st.ActiveVersion {
				pv.Choices = append(pv.Choices, v.Version)
			}
		}
		views = append(views, pv)
	}
	d := pageData{Title: "Plugins", Data: views, Errors: map[string]string{}}
	if done := ctx.Query("done"); done != "" {
		d.Notice = done
	}
	if err := c.cfg.Plugins.Ready(); err != nil {
		d.Error = "Not ready: " + err.Error()
	}
	c.render(ctx, http.StatusOK, "plugins", nil, d)
}

// pluginAction activates a version, starts or ends a canary, or rolls back, after a confirmation, as the
// admin API does.
func (c *Console) pluginAction(ctx *gin.Context) {
	op := ctx.MustGet("operator").(operator)
	name, kind, version := ctx.Param("name"), ctx.PostForm("op"), ctx.PostForm("version")
	fail := func(status int, msg string) {
		c.log.Info("console: plugin action refused", "operator", op.Name, "plugin", name, "op", kind, "version", version, "err", msg)
		c.render(ctx, status, "error", nil, pageData{Title: "Plugins", Nav: "plugins", Error: msg})
	}
	if _, err := c.cfg.Plugins.Status(name); err != nil {
		fail(http.StatusNotFound, err.Error())
		return
	}
	percent := 0
	switch kind {
	case "activate":
	case "canary":
		p, err := strconv.Atoi(strings.TrimSpace(ctx.PostForm("percent")))
		if err != nil || p < 0 || p > 100 {
			fail(http.StatusUnprocessableEntity, "percent: give a whole number from 0 to 100")
			return
		}
		percent = p
	case "rollback":
		version = ""
	default:
		fail(http.StatusBadRequest, "op: unknown action")
		return
	}
	if kind != "rollback" && version == "" {
		fail(http.StatusUnprocessableEntity, "version: choose a version")
		return
	}
	if ctx.PostForm("confirm") != "yes" {
		c.render(ctx, http.StatusOK, "confirm", nil, pageData{Title: "Confirm " + kind, Nav: "plugins",
			Data: confirmView{Op: kind, Plugin: name, Version: version, Percent: strconv.Itoa(percent),
				Action: Prefix + "/plugins/" + name + "/action"}})
		return
	}
	rctx := ctx.Request.Context()
	var err error
	switch kind {
	case "activate":
		err = c.cfg.Plugins.Activate(rctx, name, version)
	case "canary":
		err = c.cfg.Plugins.Canary(rctx, name, version, percent)
	case "rollback":
		err = c.cfg.Plugins.Rollback(rctx, name)
	}
	c.log.Info("console: plugin action", "operator", op.Name, "remote", ctx.Request.RemoteAddr, "plugin", name, "op", kind,
		"version", version, "percent", percent, "ok", err == nil, "err", errString(err))
	if err != nil {
		fail(http.StatusConflict, err.Error())
		return
	}
	ctx.Redirect(http.StatusSeeOther, Prefix+"/plugins?done="+urlQuery(kind+" done for "+name))
}

type settlementsView struct {
	Enabled   bool
	Merchants []string
	Report    *settlement.Report
	Missing   bool
	Chart     *chart
	CSVQuery  string
}

// chart is a server-rendered SVG bar chart of the net payouts of the last days.
type chart struct {
	Bars          []bar
	Width, Height int
	Max           int64
}

type bar struct {
	Date           string
	Net            int64
	X, Y, W, H     int
	Missing, Today bool
}

const chartDays = 30

// settlements shows a merchant's settlement report for a ledger date (default yesterday, UTC) with its
// mismatches and entries, a chart of the net payouts of the last 30 ledger dates, and the CSV download.
func (c *Console) settlements(ctx *gin.Context) {
	merchants := c.merchants()
	f := map[string]string{"merchant": strings.TrimSpace(ctx.Query("merchant")), "date": strings.TrimSpace(ctx.Query("date"))}
	if f["merchant"] == "" && len(merchants) > 0 {
		f["merchant"] = merchants[0]
	}
	if f["date"] == "" {
		f["date"] = c.cfg.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	}
	v := &settlementsView{Enabled: c.cfg.Settlements != nil, Merchants: merchants}
	d := pageData{Title: "Settlements", Form: f, Errors: map[string]string{}, Data: v}
	if !v.Enabled {
		c.render(ctx, http.StatusOK, "settlements", nil, d)
		return
	}
	if !slices.Contains(merchants, f["merchant"]) {
		d.Errors["merchant"] = "no such merchant"
	}
	day, err := time.Parse(time.DateOnly, f["date"])
	if err != nil {
		d.Errors["date"] = "write the date as YYYY-MM-DD"
	}
	if len(d.Errors) > 0 {
		c.render(ctx, http.StatusBadRequest, "settlements", nil, d)
		return
	}
	rctx := ctx.Request.Context()
	r, err := c.cfg.Settlements.Report(rctx, f["merchant"], f["date"])
	switch {
	case errors.Is(err, settlement.ErrNoReport):
		v.Missing = true
	case err != nil:
		d.Error = "The settlement report cannot be built now: " + err.Error()
		c.render(ctx, http.StatusServiceUnavailable, "settlements", nil, d)
		return
	default:
		v.Report = r
		v.CSVQuery = "merchant=" + urlQuery(f["merchant"]) + "&date=" + urlQuery(f["date"])
	}
	v.Chart = c.chart(rctx, f["merchant"], day)
	c.render(ctx, http.StatusOK, "settlements", nil, d)
}

// chart reads the reports of the chartDays ledger dates up to day.
func (c *Console) chart(ctx context.Context, merchant string, day time.Time) *chart {
	ch := &chart{Width: 600, Height: 160}
	w := ch.Width / chartDays
	for i := chartDays - 1; i >= 0; i-- {
		date := day.AddDate(0, 0, -i).Format(time.DateOnly)
		b := bar{Date: date, Today: i == 0}
		if r, err := c.cfg.Settlements.Report(ctx, merchant, date); err == nil {
			b.Net = r.NetPayout
		} else {
			b.Missing = true
		}
		ch.Max = max(ch.Max, b.Net)
		ch.Bars = append(ch.Bars, b)
	}
	for i := range ch.Bars {
		b := &ch.Bars[i]
		b.X, b.W = i*w+1, w-2
		if ch.Max > 0 && b.Net > 0 {
			b.H = max(1, int(b.Net*int64(ch.Height-20)/ch.Max))
		}
		b.Y = ch.Height - b.H
	}
	return ch
}

// settlementsCSV downloads a report as CSV (settlement.Report.WriteCSV, as the API's ?format=csv).
func (c *Console) settlementsCSV(ctx *gin.Context) {
	merchant, date := ctx.Query("merchant"), ctx.Query("date")
	if c.cfg.Settlements == nil {
		c.render(ctx, http.StatusNotFound, "error", nil, pageData{Title: "Settlements", Nav: "settlements",
			Error: "Settlement following is off (settlement.enabled)."})
		return
	}
	if _, err := time.Parse(time.DateOnly, date); err != nil || !slices.Contains(c.merchants(), merchant) {
		c.render(ctx, http.StatusBadRequest, "error", nil, pageData{Title: "Settlements", Nav: "settlements",
			Error: "Choose a merchant and a date (YYYY-MM-DD)."})
		return
	}
	r, err := c.cfg.Settlements.Report(ctx.Request.Context(), merchant, date)
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, settlement.ErrNoReport) {
			status = http.StatusNotFound
		}
		c.render(ctx, status, "error", nil, pageData{Title: "Settlements", Nav: "settlements", Error: err.Error()})
		return
	}
	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		c.render(ctx, http.StatusInternalServerError, "error", nil, pageData{Title: "Settlements", Nav: "settlements", Error: err.Error()})
		return
	}
	ctx.Header("Content-Disposition", `attachment; filename="settlement-`+merchant+`-`+date+`.csv"`)
	ctx.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

type healthView struct {
	Store     string
	Plugins   string
	Providers []providerCheck
	Health    *Health
	Lag       time.Duration
}

type providerCheck struct {
	Merchant, URL, Result string
	OK                    bool
}

func (c *Console) health(ctx *gin.Context) {
	rctx, cancel := context.WithTimeout(ctx.Request.Context(), 5*time.Second)
	defer cancel()
	v := healthView{Store: "ok", Plugins: "ok"}
	if err := c.cfg.Store.Ping(rctx); err != nil {
		v.Store = err.Error()
	}
	if err := c.cfg.Plugins.Ready(); err != nil {
		v.Plugins = err.Error()
	}
	cfg := c.cfg.Config()
	ids := c.merchants()
	v.Providers = make([]providerCheck, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		u := cfg.Merchants[id].Vipps.BaseURL
		v.Providers[i] = providerCheck{Merchant: id, URL: u}
		wg.Go(func() { v.Providers[i].Result, v.Providers[i].OK = c.reach(rctx, u) })
	}
	if c.cfg.Health != nil {
		h := c.cfg.Health(rctx)
		v.Health = &h
		if !h.ReconcilerLastRun.IsZero() {
			v.Lag = c.cfg.Now().Sub(h.ReconcilerLastRun)
		}
	}
	wg.Wait()
	c.render(ctx, http.StatusOK, "health", nil, pageData{Title: "Health", Data: v})
}

// reach reports whether the provider's base URL answers HTTP at all (any status): a network-level check,
// with no credentials sent.
func (c *Console) reach(ctx context.Context, u string) (string, bool) {
	if u == "" {
		return "no base URL configured", false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return err.Error(), false
	}
	start := time.Now()
	resp, err := c.cfg.ProviderClient.Do(req)
	if resp != nil {
		_ = resp.Body.Close() // a refused redirect comes with its response: the host answered
	}
	if resp == nil {
		return "unreachable: " + err.Error(), false
	}
	return fmt.Sprintf("answered HTTP %d in %s", resp.StatusCode, time.Since(start).Round(time.Millisecond)), true
}

func urlQuery(s string) string { return template.URLQueryEscaper(s) }

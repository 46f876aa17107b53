// Package fence owns the line between what a payment plugin decides and what kasse decides. A plugin
// builds provider requests and reads provider answers, but every value kasse decides (the callback,
// fallback, shipping-details and consent-removal URLs, the callback token, the merchant serial number,
// the amounts and the currency, the payment's reference) must reach the provider exactly as kasse decided
// it, and a redirect a plugin hands back must point where the merchant's provider lives. Request and
// Redirect check that, before anything is sent or shown to a customer; Report counts a refusal against
// the plugin version that caused it. plugin/ABI.md ("What a plugin decides") is the rule in prose.
//
// The checks know the two provider APIs the plugins speak (eCom v2 and ePayment v1): for each build
// operation the method and path the request must have and the JSON pointers at which host values must
// appear. A request that fits none of them is refused: fail closed. The report operations (abi.ReportOps)
// must build exactly the Report API GET that the host's query names: the merchant's own sales unit, ledger,
// topic, date and cursor (report.go).
package fence

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kassehq/kasse/host/internal/jsonvalue"
	"github.com/kassehq/kasse/plugin/abi"
)

// Error is a plugin output the host refuses. It names the field (a JSON pointer into the request body,
// "/path" or "/method" for the request line, "/inject" for an injection, "/payment/redirectUrl" for a
// redirect) and the reason, never the value (which may be a token).
type Error struct {
	// Op is the plugin operation whose output is refused.
	Op abi.Op
	// Pointer names the refused field.
	Pointer string
	// Reason says what is wrong.
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("fence: %s output refused: %s: %s", e.Op, e.Pointer, e.Reason)
}

// value is how a host value is compared: a string, or an integer (money, in minor units).
type value struct {
	s     string
	n     int64
	isNum bool
}

func str(s string) value { return value{s: s} }
func num(n int64) value  { return value{n: n, isNum: true} }
func (v value) String() string {
	if v.isNum {
		return strconv.FormatInt(v.n, 10)
	}
	return v.s
}

// field is one host value at one pointer of the body.
type field struct {
	pointer  string
	want     func(in *abi.Input) (value, bool) // false: the host has no such value for this input
	optional bool                              // may be absent; when present it must match
}

// shape is one request a build operation may produce.
type shape struct {
	method string
	// path is the request path with "{ref}" for the session's provider reference.
	path   string
	fields []field
	// inject lists the pointers at which the callback token must be injected (all of them, nothing else).
	inject []string
}

func msn(in *abi.Input) (value, bool)      { return str(in.Merchant.MerchantSerialNumber), true }
func callback(in *abi.Input) (value, bool) { return str(in.Merchant.CallbackPrefix), true }
func fallBack(in *abi.Input) (value, bool) { return str(in.Merchant.FallBack), true }
func ref(in *abi.Input) (value, bool)      { return str(in.Session.ProviderReference), true }
func amount(in *abi.Input) (value, bool)   { return num(in.Session.Amount), true }
func currency(in *abi.Input) (value, bool) { return str(in.Session.Currency), true }
func opAmount(in *abi.Input) (value, bool) {
	if in.Operation == nil {
		return value{}, false
	}
	return num(in.Operation.Amount), true
}
func consentPrefix(in *abi.Input) (value, bool) {
	if in.Merchant.Express == nil {
		return value{}, false
	}
	return str(in.Merchant.Express.ConsentRemovalPrefix), true
}
func shippingPrefix(in *abi.Input) (value, bool) {
	if in.Merchant.Express == nil || in.Merchant.Express.ShippingDetailsPrefix == "" {
		return value{}, false
	}
	return str(in.Merchant.Express.ShippingDetailsPrefix), true
}

// shapes are the requests each build operation may produce, by provider API.
var shapes = map[abi.Op][]shape{
	abi.OpBuildInitiate: {
		{method: "POST", path: "/ecomm/v2/payments", fields: []field{
			{pointer: "/merchantInfo/merchantSerialNumber", want: msn},
			{pointer: "/merchantInfo/callbackPrefix", want: callback},
			{pointer: "/merchantInfo/fallBack", want: fallBack},
			{pointer: "/merchantInfo/consentRemovalPrefix", want: consentPrefix},
			{pointer: "/merchantInfo/shippingDetailsPrefix", want: shippingPrefix, optional: true},
			{pointer: "/transaction/orderId", want: ref},
			{pointer: "/transaction/amount", want: amount},
		}, inject: []string{"/merchantInfo/authToken"}},
		{method: "POST", path: "/epayment/v1/payments", fields: []field{
			{pointer: "/reference", want: ref},
			{pointer: "/amount/value", want: amount},
			{pointer: "/amount/currency", want: currency},
			{pointer: "/returnUrl", want: fallBack, optional: true},
		}},
	},
	abi.OpBuildCapture: {
		{method: "POST", path: "/ecomm/v2/payments/{ref}/capture", fields: []field{
			{pointer: "/merchantInfo/merchantSerialNumber", want: msn},
			{pointer: "/transaction/amount", want: opAmount},
		}},
		{method: "POST", path: "/epayment/v1/payments/{ref}/capture", fields: []field{
			{pointer: "/modificationAmount/value", want: opAmount},
			{pointer: "/modificationAmount/currency", want: currency},
		}},
	},
	abi.OpBuildRefund: {
		{method: "POST", path: "/ecomm/v2/payments/{ref}/refund", fields: []field{
			{pointer: "/merchantInfo/merchantSerialNumber", want: msn},
			{pointer: "/transaction/amount", want: opAmount},
		}},
		{method: "POST", path: "/epayment/v1/payments/{ref}/refund", fields: []field{
			{pointer: "/modificationAmount/value", want: opAmount},
			{pointer: "/modificationAmount/currency", want: currency},
		}},
	},
	abi.OpBuildCancel: {
		{method: "PUT", path: "/ecomm/v2/payments/{ref}/cancel", fields: []field{
			{pointer: "/merchantInfo/merchantSerialNumber", want: msn},
		}},
		{method: "POST", path: "/epayment/v1/payments/{ref}/cancel"},
	},
	abi.OpBuildDetails: {
		{method: "GET", path: "/ecomm/v2/payments/{ref}/details"},
		{method: "GET", path: "/epayment/v1/payments/{ref}"},
	},
}

// Request checks the request a plugin built for in. It refuses (with an *Error) a request whose method
// and path fit none of the operation's shapes, a host value that is missing or differs at its pointer,
// a callback-token injection at any other pointer than the shape's (or a missing one), and any URL in
// the body that does not start with a URL kasse decided. Operations without a known shape (a plugin's
// own extra operations) must still name the session's reference as a path segment, may not inject, and
// pass the URL check.
func Request(in *abi.Input, req *abi.Request) error {
	return requestWith(in, req, decodeBody)
}

// requestWith is Request with the body decoded by decode (the tests hold decodeBody to encoding/json).
func requestWith(in *abi.Input, req *abi.Request, decode func([]byte) (any, error)) error {
	if req == nil {
		return &Error{Op: in.Op, Pointer: "/request", Reason: "missing"}
	}
	refuse := func(ptr, reason string) error { return &Error{Op: in.Op, Pointer: ptr, Reason: reason} }
	var doc any
	if len(req.Body) > 0 {
		var err error
		if doc, err = decode(req.Body); err != nil {
			return refuse("/body", "not JSON")
		}
	}
	if err := checkURLs(in, doc, make([]string, 0, 8)); err != nil {
		return err
	}
	if slices.Contains(abi.ReportOps, in.Op) {
		return reportRequest(in, req)
	}
	known, ok := shapes[in.Op]
	if !ok {
		if len(req.Inject) > 0 {
			return refuse("/inject", "operation "+string(in.Op)+" may not ask for host values")
		}
		if !slices.Contains(strings.Split(req.Path, "/"), in.Session.ProviderReference) {
			return refuse("/path", "does not name the session's provider reference")
		}
		return nil
	}
	var sh *shape
	for i := range known {
		p := strings.ReplaceAll(known[i].path, "{ref}", in.Session.ProviderReference)
		if req.Method == known[i].method && req.Path == p {
			sh = &known[i]
			break
		}
	}
	if sh == nil {
		return refuse("/path", fmt.Sprintf("%s %s is not a request kasse sends for %s (the path must name the session's provider reference)",
			req.Method, clip(req.Path, 80), in.Op))
	}
	for _, f := range sh.fields {
		want, has := f.want(in)
		got, present := lookup(doc, f.pointer)
		switch {
		case !has && present:
			return refuse(f.pointer, "kasse decides this value and has none for this checkout")
		case !has:
		case !present && f.optional:
		case !present:
			return refuse(f.pointer, "missing: kasse decides this value")
		case !equal(got, want):
			return refuse(f.pointer, "differs from the value kasse decided")
		}
	}
	var injected []string
	for _, inj := range req.Inject {
		if inj.Value != abi.InjectCallbackToken || !slices.Contains(sh.inject, inj.Pointer) {
			return refuse("/inject", fmt.Sprintf("%q at %s is not an injection kasse makes for %s", clip(inj.Value, 40), clip(inj.Pointer, 80), in.Op))
		}
		injected = append(injected, inj.Pointer)
	}
	for _, ptr := range sh.inject {
		if !slices.Contains(injected, ptr) {
			return refuse(ptr, "the callback token must be injected here by kasse")
		}
	}
	return nil
}

// decodeBody decodes the first JSON value of body as encoding/json's Decoder with UseNumber does (see
// jsonvalue.Decode); any error means "not JSON".
func decodeBody(body []byte) (any, error) {
	v, _, err := jsonvalue.Decode(body)
	return v, err
}

// checkURLs refuses a string in the body that holds a URL which does not start with one kasse decided.
// path holds the escaped tokens down to v; the pointer is only written for a refusal, which keeps the
// walk of a body free of allocations.
func checkURLs(in *abi.Input, v any, path []string) error {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if err := checkURLs(in, e, append(path, escape(k))); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := checkURLs(in, e, append(path, strconv.Itoa(i))); err != nil {
				return err
			}
		}
	case string:
		if !looksLikeURL(x) {
			return nil
		}
		for _, ok := range hostURLs(in) {
			if ok != "" && strings.HasPrefix(x, ok) {
				return nil
			}
		}
		if shopText(in, x) {
			return nil
		}
		ptr := ""
		for _, t := range path {
			ptr += "/" + t
		}
		return &Error{Op: in.Op, Pointer: ptr, Reason: "a URL kasse did not decide (callbacks, returns and " +
			"shipping or consent hooks are kasse's)"}
	}
	return nil
}

// looksLikeURL reports whether s starts with a URL scheme and "://".
func looksLikeURL(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 {
		return false
	}
	for j, r := range s[:i] {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case j > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// shopText reports whether s comes from text the shop wrote (a description or an operation's text), which
// a plugin copies into transaction texts and which may itself start with a URL.
func shopText(in *abi.Input, s string) bool {
	texts := []string{in.Session.Description, in.Merchant.TransactionTextPrefix + in.Session.Description}
	if in.Operation != nil {
		texts = append(texts, in.Operation.Text)
	}
	return slices.ContainsFunc(texts, func(t string) bool { return t != "" && strings.Contains(t, s) })
}

func hostURLs(in *abi.Input) []string {
	urls := []string{in.Merchant.CallbackPrefix, in.Merchant.FallBack}
	if x := in.Merchant.Express; x != nil {
		urls = append(urls, x.ShippingDetailsPrefix, x.ConsentRemovalPrefix)
	}
	return urls
}

// lookup finds the value at an RFC 6901 pointer (the shapes' pointers, which start with "/").
func lookup(doc any, ptr string) (any, bool) {
	cur := doc
	if ptr == "" {
		return cur, true
	}
	_, rest, _ := strings.Cut(ptr, "/")
	for {
		tok, next, more := strings.Cut(rest, "/")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if strings.Contains(tok, "~") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
		if !more {
			return cur, true
		}
		rest = next
	}
}

func equal(got any, want value) bool {
	if want.isNum {
		n, ok := got.(json.Number)
		if !ok {
			return false
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		return err == nil && i == want.n
	}
	s, ok := got.(string)
	return ok && s == want.s
}

func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Allow is where a plugin may send a customer: the redirect URL, app link or QR target of a read_initiate
// answer.
type Allow struct {
	// Hosts are the allowed hosts of https URLs, as "host" or "host:port", compared case-insensitively.
	Hosts []string
	// HTTPHosts are hosts for which plain http is allowed too (a loopback simulator's base URL).
	HTTPHosts []string
	// Schemes are the allowed app-link schemes, without "://", compared case-insensitively.
	Schemes []string
}

// AppSchemes are the app-link schemes Vipps documents: vipps:// (production) and vippsMT:// (test),
// vipps-reference.md §1. MobilePay's app switch goes through the same Vipps MobilePay landing page, so
// no separate scheme is allowed by default; add one with the merchant's vipps.redirectSchemes.
var AppSchemes = []string{"vipps", "vippsMT"}

// landingHosts are the documented landing-page hosts of the production and test APIs: ePayment answers
// https://landing.vipps.no?token=... (vipps-reference.md, ePayment create payment).
var landingHosts = map[string][]string{
	"api.vipps.no":     {"landing.vipps.no"},
	"apitest.vipps.no": {"landing.vipps.no"},
}

// AllowFor returns the default allow-list for a merchant whose provider base URL is baseURL: its host
// (plain http too when the base URL is http, which config allows only for loopback), the documented
// landing host of the Vipps APIs, the documented app schemes, plus the extra hosts and schemes the
// merchant configures.
func AllowFor(baseURL string, extraHosts, extraSchemes []string) Allow {
	a := Allow{Schemes: append(slices.Clone(AppSchemes), extraSchemes...), Hosts: slices.Clone(extraHosts)}
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		a.Hosts = append(a.Hosts, u.Host)
		a.Hosts = append(a.Hosts, landingHosts[strings.ToLower(u.Hostname())]...)
		if u.Scheme == "http" {
			a.HTTPHosts = append(a.HTTPHosts, u.Host)
		}
	}
	return a
}

// Redirect checks the redirect URL (or app link, or QR target) a plugin read from the provider's answer
// against allow. An empty URL (a push-message flow has none) passes.
func Redirect(op abi.Op, redirect string, allow Allow) error {
	if redirect == "" {
		return nil
	}
	refuse := func(reason string) error {
		return &Error{Op: op, Pointer: "/payment/redirectUrl", Reason: reason}
	}
	u, err := url.Parse(redirect)
	if err != nil || u.Scheme == "" {
		return refuse("not an absolute URL")
	}
	if u.User != nil {
		return refuse("carries user information")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	has := func(list []string, s string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
	}
	switch {
	case scheme == "https" && has(allow.Hosts, host):
		return nil
	case scheme == "http" && has(allow.HTTPHosts, host):
		return nil
	case scheme != "https" && scheme != "http" && has(allow.Schemes, scheme):
		return nil
	}
	if scheme == "https" || scheme == "http" {
		return refuse(fmt.Sprintf("%s://%s is not one of the merchant's provider hosts", scheme, clip(host, 80)))
	}
	return refuse(fmt.Sprintf("scheme %q is not one of the allowed app schemes", clip(scheme, 30)))
}

// Refuser is what a plugin version implements to have refusals of its outputs counted against it: the
// versions host/upgrade hands out do.
type Refuser interface {
	Refused(err error)
}

// Report counts err against plugin when it can be counted (plugin implements Refuser).
func Report(plugin any, err error) {
	if r, ok := plugin.(Refuser); ok {
		r.Refused(err)
	}
}

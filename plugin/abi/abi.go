// Package abi defines the contract between the kasse host and a payment plugin: the names of the
// WebAssembly exports, the ABI version, and the JSON messages that cross the sandbox boundary.
//
// The host imports this package to build inputs and read outputs; the guest SDK (plugin/sdk) imports it
// to decode inputs and encode outputs. The input crosses as JSON in ABI version 1 and in the binary
// encoding of binary.go (AppendBinary, Decoder) in version 2; the output is JSON in both. Nothing here does I/O, so it compiles for GOOS=wasip1 and natively.
// plugin/ABI.md describes the same contract for authors who write plugins in other languages.
package abi

import "encoding/json"

// Version is the newest ABI version (VersionBinary): the one modules built with plugin/sdk report unless
// built with the kasse_abi1 tag. A module's kasse_abi_version export returns a version for which
// Supported is true; the host encodes each module's input in that version's encoding.
const Version = VersionBinary

// Names of the exports every plugin module provides. See plugin/ABI.md for their signatures.
const (
	// ExportABIVersion is `kasse_abi_version() -> i32`.
	ExportABIVersion = "kasse_abi_version"
	// ExportInput is `kasse_input(size i32) -> i32`: returns the address of a guest-owned buffer of at
	// least size bytes into which the host writes the next input.
	ExportInput = "kasse_input"
	// ExportCall is `kasse_call(size i32) -> i64`: handles the size bytes of input in the buffer and
	// returns the output's address in the high 32 bits and its length in the low 32 bits. The output
	// stays valid until the next call into the module.
	ExportCall = "kasse_call"
	// ExportYield is `kasse_yield()`: lets the guest's runtime run its garbage collector. The host calls
	// it off the request path (when an instance goes back to its pool).
	ExportYield = "kasse_yield"
	// StartFunction is the reactor initialiser the host runs once per instance.
	StartFunction = "_initialize"
)

// Op names an operation the host asks a plugin to perform. Build operations turn a session into an HTTP
// request for the provider; read operations turn the provider's answer (or a callback) into a payment status.
type Op string

// Operations every payment plugin implements.
const (
	OpBuildInitiate Op = "build_initiate"
	OpReadInitiate  Op = "read_initiate"
	OpBuildCapture  Op = "build_capture"
	OpReadCapture   Op = "read_capture"
	OpBuildCancel   Op = "build_cancel"
	OpReadCancel    Op = "read_cancel"
	OpBuildRefund   Op = "build_refund"
	OpReadRefund    Op = "read_refund"
	OpBuildDetails  Op = "build_details"
	OpReadDetails   Op = "read_details"
	OpReadCallback  Op = "read_callback"
	// OpShippingOptions answers the provider's Express shipping question: from the cart stored with the
	// session at initiation (Session.Lines, Session.Amount), the address in Callback (the provider's
	// request body, as received) and the merchant's shipping rules (Merchant.Express.Shipping), it returns
	// the body to answer the provider with in Output.Reply.
	OpShippingOptions Op = "shipping_options"
)

// Ops lists every operation, in the order they are documented.
var Ops = []Op{
	OpBuildInitiate, OpReadInitiate, OpBuildCapture, OpReadCapture, OpBuildCancel, OpReadCancel,
	OpBuildRefund, OpReadRefund, OpBuildDetails, OpReadDetails, OpReadCallback,
}

// ExpressOps lists the operations a plugin that offers Express Checkout implements besides Ops. The host
// calls them only for merchants whose Express Checkout is on; other plugins answer "unsupported_op".
var ExpressOps = []Op{OpShippingOptions}

// Report operations follow the merchant's settlement ledger (the Vipps Report API: ledgers, and the funds
// and fees accounts of a ledger as a cursor feed or as a complete report per ledger date). They work on a
// ReportQuery, which the host sends as JSON in Input.Callback (the one free-form field of Input, so that
// they ride along whatever encoding Input has), and never on a session: Input.Session is empty.
//
// A build operation returns the GET request in Output.Request; its read twin gets the query again (in
// Callback) with the provider's answer (in Response) and returns Output.Ledgers or Output.Report.
const (
	// OpBuildLedgers builds the request for the ledgers that settle the merchant's sales unit
	// (Merchant.MerchantSerialNumber), from ReportQuery.Cursor when paging.
	OpBuildLedgers Op = "build_ledgers"
	// OpReadLedgers reads the ledger list into Output.Ledgers.
	OpReadLedgers Op = "read_ledgers"
	// OpBuildReportFeed builds the request for the next page of a ledger account's feed
	// (ReportQuery.LedgerID, .Topic, .Cursor; an empty cursor starts at the beginning).
	OpBuildReportFeed Op = "build_report_feed"
	// OpReadReportFeed reads a feed page into Output.Report.
	OpReadReportFeed Op = "read_report_feed"
	// OpBuildReportByDate builds the request for one ledger date's complete report of an account
	// (ReportQuery.LedgerID, .Topic, .Date, and .Cursor for the pages after the first).
	OpBuildReportByDate Op = "build_report_by_date"
	// OpReadReportByDate reads a page of a date's report into Output.Report. A date that is not closed yet
	// (HTTP 404, or tryLater) is not an error: the page is empty with TryLater set.
	OpReadReportByDate Op = "read_report_by_date"
)

// ReportOps lists the report operations. They are optional: a plugin that does not follow ledgers answers
// "unsupported_op", and a manifest need not list them (the host follows a merchant's ledger only with a
// plugin version whose manifest does).
var ReportOps = []Op{OpBuildLedgers, OpReadLedgers, OpBuildReportFeed, OpReadReportFeed, OpBuildReportByDate,
	OpReadReportByDate}

// Report topics: the two accounts of a ledger.
const (
	// TopicFunds is the funds account: captures, refunds, fees retained, payouts scheduled.
	TopicFunds = "funds"
	// TopicFees is the fees account: the fee of each capture, and how the fees were settled.
	TopicFees = "fees"
)

// Ledger entry types the Vipps Report API documents. The list is open: the API adds types without warning,
// so LedgerEntry.EntryType keeps any string, and a consumer treats an unknown type by its amount alone.
const (
	EntryCapture                 = "capture"
	EntryRefund                  = "refund"
	EntryFeesRetained            = "fees-retained"
	EntryFeesInvoiced            = "fees-invoiced"
	EntryScheduledForPayout      = "scheduled-for-payout"
	EntryPayoutAborted           = "payout-aborted"
	EntryRetainedDisputedCapture = "retained-disputed-capture"
	EntryReturnedDisputedCapture = "returned-disputed-capture"
	EntryCorrection              = "correction"
	EntryCaptureFee              = "capture-fee"
	EntryTopUp                   = "top-up"
)

// ReportQuery says which part of the merchant's ledger a report operation is about. Every value in it is
// the host's: the fence checks that the built request names exactly these.
type ReportQuery struct {
	// LedgerID is the ledger (from read_ledgers, or the merchant's configuration). Not used by the ledgers
	// operations.
	LedgerID string `json:"ledgerId,omitempty"`
	// Topic is TopicFunds or TopicFees. Not used by the ledgers operations.
	Topic string `json:"topic,omitempty"`
	// Date is the ledger date, YYYY-MM-DD (report_by_date only).
	Date string `json:"date,omitempty"`
	// Cursor continues where the previous page ended: the Cursor of the last ReportPage (or LedgerList)
	// read. Empty starts at the beginning.
	Cursor string `json:"cursor,omitempty"`
}

// LedgerList is a page of the ledgers the merchant's credentials may read (read_ledgers).
type LedgerList struct {
	Ledgers []Ledger `json:"ledgers"`
	// Cursor fetches the next page; empty when there is none.
	Cursor string `json:"cursor,omitempty"`
}

// Ledger is one settlement ledger: the accounts whose balance is paid out to one bank account.
type Ledger struct {
	LedgerID string `json:"ledgerId"`
	// Currency is the ledger's ISO 4217 currency, when the answer says.
	Currency string `json:"currency,omitempty"`
	// PayoutBankAccount is the account payouts go to, as "scheme:id" (e.g. "BBAN:NO:86011117947"), when
	// the answer says.
	PayoutBankAccount string `json:"payoutBankAccount,omitempty"`
	// RecipientHandles are the sales units the ledger settles for: "api:{msn}" for eCom and ePayment,
	// "NO:{number}" (or DK, FI) for a Vippsnummer or MyShop.
	RecipientHandles []string `json:"recipientHandles,omitempty"`
}

// ReportPage is one page of a ledger account's entries (read_report_feed, read_report_by_date).
type ReportPage struct {
	// LedgerID, Topic and Date echo the query the page answers (Date only for report_by_date).
	LedgerID string `json:"ledgerId"`
	Topic    string `json:"topic"`
	Date     string `json:"date,omitempty"`
	// Entries are the page's entries in the provider's order (the feed's order is the ledger's order).
	Entries []LedgerEntry `json:"entries"`
	// Cursor continues after this page. On the feed it is never empty: at the end of the feed it is the
	// same cursor again. By date it is empty on the last page.
	Cursor string `json:"cursor,omitempty"`
	// HasMore says another page follows at once (by date: fetch it with Cursor).
	HasMore bool `json:"hasMore,omitempty"`
	// TryLater says no more data is available yet: at the end of the feed, or a date not closed yet (the
	// page is then empty). Ask again later with the same Cursor.
	TryLater bool `json:"tryLater,omitempty"`
}

// LedgerEntry is one entry on a ledger account, as the provider reports it. Money is int64 minor units;
// a negative amount takes money off the account.
type LedgerEntry struct {
	// EntryType is the provider's type, kept as given (one of the Entry* constants, or a newer one).
	EntryType string `json:"entryType"`
	Amount    int64  `json:"amount"`
	// Currency is the ISO 4217 code, when the answer says.
	Currency string `json:"currency,omitempty"`
	// Reference is the payment's reference (eCom orderId, ePayment reference) on captures, refunds,
	// disputes and fees; on scheduled-for-payout, the text on the payout's bank transfer.
	Reference string `json:"reference,omitempty"`
	// PSPReference is the provider's id of the transaction; it links a capture to its fees, and names
	// a payout.
	PSPReference string `json:"pspReference,omitempty"`
	// Time is when the entry was made, RFC 3339 in UTC (the provider's offset applied).
	Time string `json:"time,omitempty"`
	// LedgerDate is the ledger date the entry belongs to, YYYY-MM-DD, when the answer says (by date it
	// is the date asked for).
	LedgerDate string `json:"ledgerDate,omitempty"`
	// RecipientHandle is the sales unit the payment was made to, e.g. "NO:57860" or "api:123456".
	RecipientHandle string `json:"recipientHandle,omitempty"`
	// BalanceBefore and BalanceAfter are the account's balance around the entry, in minor units.
	BalanceBefore int64 `json:"balanceBefore"`
	BalanceAfter  int64 `json:"balanceAfter"`
}

// Input is the one message the host sends for every call. Fields that an operation does not use are empty.
type Input struct {
	Op       Op       `json:"op"`
	Merchant Merchant `json:"merchant"`
	Session  Session  `json:"session"`
	// Operation carries the amount and text of a capture, refund or cancel.
	Operation *Operation `json:"operation,omitempty"`
	// Response is the provider's answer to the request a build operation produced (read_* operations).
	Response *Response `json:"response,omitempty"`
	// Callback is the raw body of a provider callback (read_callback), or of the provider's shipping
	// question (shipping_options); for the report operations (ReportOps) it is their ReportQuery as JSON.
	Callback json.RawMessage `json:"callback,omitempty"`
}

// Merchant is the merchant's non-secret settings. Credentials never cross into the sandbox.
type Merchant struct {
	ID                   string `json:"id"`
	MerchantSerialNumber string `json:"merchantSerialNumber"`
	// CallbackPrefix is where the provider sends payment callbacks for this merchant.
	CallbackPrefix string `json:"callbackPrefix"`
	// FallBack is where the customer's browser returns after the payment, for this session.
	FallBack string `json:"fallBack"`
	// TransactionTextPrefix, when set, is put in front of the checkout's description.
	TransactionTextPrefix string `json:"transactionTextPrefix,omitempty"`
	// Express, when set, asks build_initiate for an Express Checkout payment (the customer chooses address
	// and shipping with the provider) and gives shipping_options the merchant's shipping rules. The host sets
	// it only for a checkout that asked for Express at a merchant whose Express Checkout is on.
	Express *Express `json:"express,omitempty"`
}

// Express is a merchant's Express Checkout settings for one session.
type Express struct {
	// ShippingDetailsPrefix is where the provider asks for shipping options (dynamic shipping).
	ShippingDetailsPrefix string `json:"shippingDetailsPrefix"`
	// ConsentRemovalPrefix is where the provider tells the merchant to forget a user.
	ConsentRemovalPrefix string `json:"consentRemovalPrefix"`
	// Shipping is the merchant's shipping methods and rules.
	Shipping Shipping `json:"shipping"`
}

// Shipping modes.
const (
	// ShippingStatic sends every method with its cost at initiation; the provider does not ask again.
	ShippingStatic = "static"
	// ShippingDynamic lets the provider ask for the options once the customer chose an address.
	ShippingDynamic = "dynamic"
)

// Shipping is a merchant's shipping configuration.
type Shipping struct {
	// Mode is ShippingStatic or ShippingDynamic.
	Mode string `json:"mode"`
	// Methods are the ways the merchant ships, in the order offered.
	Methods []ShippingMethod `json:"methods"`
	// Rules change a method's cost by cart total, country and postcode; the first matching rule of a
	// method wins. Static shipping applies only the rules that do not depend on the address.
	Rules []ShippingRule `json:"rules,omitempty"`
}

// ShippingMethod is one way of shipping. Money in minor units (øre).
type ShippingMethod struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Cost is the method's price before rules, in øre.
	Cost int64 `json:"cost"`
	// Default marks the method preselected for the customer.
	Default bool `json:"default,omitempty"`
	// PickupPoint marks a method where the customer collects the parcel (a shop, a locker).
	PickupPoint bool `json:"pickupPoint,omitempty"`
	// Countries (ISO 3166-1 alpha-2) the method ships to; empty means every country.
	Countries []string `json:"countries,omitempty"`
	// PostCodePrefixes the method serves, e.g. ["0", "1"] for Oslo; empty means every postcode.
	PostCodePrefixes []string `json:"postCodePrefixes,omitempty"`
}

// ShippingRule sets a method's cost when the cart and the address match. Empty conditions match all.
type ShippingRule struct {
	// Methods are the ids of the methods the rule applies to; empty means every method.
	Methods []string `json:"methods,omitempty"`
	// Countries (ISO 3166-1 alpha-2) the rule applies to.
	Countries []string `json:"countries,omitempty"`
	// PostCodePrefixes the rule applies to.
	PostCodePrefixes []string `json:"postCodePrefixes,omitempty"`
	// MinAmount is the cart total (the goods at initiation, in øre) from which the rule applies, e.g.
	// free shipping from 100000.
	MinAmount int64 `json:"minAmount,omitempty"`
	// Cost is the method's cost when the rule applies, in øre (0: free).
	Cost int64 `json:"cost"`
}

// Session is the canonical view of a checkout session the plugin works on.
type Session struct {
	ID                string `json:"id"`
	Reference         string `json:"reference"`
	ProviderReference string `json:"providerReference"`
	State             string `json:"state"`
	Amount            int64  `json:"amount"`
	Currency          string `json:"currency"`
	Description       string `json:"description"`
	CustomerPhone     string `json:"customerPhone,omitempty"`
	AuthorizedAmount  int64  `json:"authorizedAmount"`
	CapturedAmount    int64  `json:"capturedAmount"`
	RefundedAmount    int64  `json:"refundedAmount"`
	CancelledAmount   int64  `json:"cancelledAmount"`
	Lines             []Line `json:"lines,omitempty"`
	// UserFlow is the user flow the checkout asked for: "WEB_REDIRECT", "NATIVE_REDIRECT", "PUSH_MESSAGE"
	// or "QR" (the Vipps ePayment names). Empty means the plugin's default: PUSH_MESSAGE when CustomerPhone
	// is set and the provider supports it, WEB_REDIRECT otherwise. A plugin refuses a flow it cannot offer
	// with invalid_input.
	UserFlow string `json:"userFlow,omitempty"`
}

// Line is one order line, amounts in minor units.
type Line struct {
	SKU       string `json:"sku,omitempty"`
	Name      string `json:"name"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"`
}

// Operation is a merchant-initiated change: capture, refund or cancel.
type Operation struct {
	// Amount in minor units. Zero on capture means "the remaining amount".
	Amount int64  `json:"amount"`
	Text   string `json:"text"`
}

// Response is an HTTP answer from the provider, as the host received it.
type Response struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// Output is the one message a plugin returns for every call.
type Output struct {
	OK    bool   `json:"ok"`
	Error *Error `json:"error,omitempty"`
	// Request is set by build operations: the HTTP request the host should send to the provider.
	Request *Request `json:"request,omitempty"`
	// Payment is set by read operations: what the provider's answer says about the payment.
	Payment *Payment `json:"payment,omitempty"`
	// Reply is set by shipping_options: the HTTP answer the host sends back to the provider's request.
	Reply *Reply `json:"reply,omitempty"`
	// Ledgers is set by read_ledgers.
	Ledgers *LedgerList `json:"ledgers,omitempty"`
	// Report is set by read_report_feed and read_report_by_date.
	Report *ReportPage `json:"report,omitempty"`
}

// Reply is an HTTP answer the host gives the provider on the plugin's behalf.
type Reply struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// Error is a failure the plugin reports as data: invalid input, or an error the provider answered with.
type Error struct {
	// Code is stable and machine-readable, e.g. "invalid_input", "provider_error", "unexpected_response".
	Code    string `json:"code"`
	Message string `json:"message"`
	// ProviderStatus is the provider's HTTP status, when the error came from the provider.
	ProviderStatus int `json:"providerStatus,omitempty"`
	// ProviderErrors are the provider's own error entries, e.g. eCom's errorGroup/errorCode pairs.
	ProviderErrors []ProviderError `json:"providerErrors,omitempty"`
	// Retryable says whether sending the same request again (with the same idempotency key) may succeed.
	Retryable bool `json:"retryable,omitempty"`
}

// ProviderError is one entry of a provider's error list.
type ProviderError struct {
	Group   string `json:"group,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Request is an HTTP request to the provider, built by the plugin and sent by the host. The host resolves
// Path against the merchant's configured base URL (it must start with "/"), and adds every credential header.
type Request struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body,omitempty"`
	// IdempotencyHeader names the header in which the host sends the operation's idempotency key,
	// e.g. "X-Request-Id" for eCom. Empty means the request is not idempotent.
	IdempotencyHeader string `json:"idempotencyHeader,omitempty"`
	// Inject lists values only the host knows that it writes into Body before sending.
	Inject []Injection `json:"inject,omitempty"`
}

// Injection asks the host to set the JSON value at Pointer (RFC 6901) in the request body to the host value
// named Value. The plugin never sees the value itself.
type Injection struct {
	Pointer string `json:"pointer"`
	Value   string `json:"value"`
}

// Host values a plugin may ask to inject.
const (
	// InjectCallbackToken is the per-session random token the provider echoes on callbacks.
	InjectCallbackToken = "callbackToken"
)

// Payment is the provider-neutral status of a payment as one provider answer shows it.
type Payment struct {
	// State is one of the canonical states: pending, authorized, captured, refunded, cancelled, rejected,
	// expired, failed. See host/payment for their meaning.
	State             string `json:"state"`
	ProviderReference string `json:"providerReference,omitempty"`
	RedirectURL       string `json:"redirectUrl,omitempty"`
	// Amounts in minor units. A read operation sets the ones the answer reveals; -1 means "not known from
	// this answer", so the host keeps what it had.
	AuthorizedAmount int64 `json:"authorizedAmount"`
	CapturedAmount   int64 `json:"capturedAmount"`
	RefundedAmount   int64 `json:"refundedAmount"`
	CancelledAmount  int64 `json:"cancelledAmount"`
	// Reason explains a rejected, expired or failed payment, e.g. the provider's error message.
	Reason string `json:"reason,omitempty"`
	// Contact is who paid, when the answer says (Express: the provider's user details).
	Contact *Contact `json:"contact,omitempty"`
	// Shipping is the delivery the customer chose (Express).
	Shipping *ShippingChoice `json:"shipping,omitempty"`
}

// Contact is a customer as the provider knows them. Personal data: the host removes it on consent removal.
type Contact struct {
	// UserID is the provider's id of the user; consent removal names it.
	UserID      string `json:"userId,omitempty"`
	FirstName   string `json:"firstName,omitempty"`
	LastName    string `json:"lastName,omitempty"`
	Email       string `json:"email,omitempty"`
	PhoneNumber string `json:"phoneNumber,omitempty"`
}

// Address is a delivery address, normalised by the plugin.
type Address struct {
	Line1    string `json:"line1,omitempty"`
	Line2    string `json:"line2,omitempty"`
	PostCode string `json:"postCode,omitempty"`
	City     string `json:"city,omitempty"`
	// Country is an ISO 3166-1 alpha-2 code, e.g. "NO".
	Country string `json:"country,omitempty"`
}

// ShippingChoice is the shipping method the customer chose, its cost in minor units (øre) and the address.
type ShippingChoice struct {
	MethodID string   `json:"methodId,omitempty"`
	Method   string   `json:"method,omitempty"`
	Cost     int64    `json:"cost"`
	Address  *Address `json:"address,omitempty"`
}

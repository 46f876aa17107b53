package vippssim

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error groups of the eCom API (schema Error, property errorGroup).
const (
	groupAuthentication = "Authentication"
	groupPayment        = "Payment"
	groupInvalidRequest = "InvalidRequest"
	groupVippsError     = "VippsError"
	groupMerchant       = "Merchant"
)

// Sentinel errors returned (wrapped) by the test controls of [Server].
var (
	// ErrUnknownPayment means no payment has the given orderId.
	ErrUnknownPayment = errors.New("vippssim: unknown orderId")
	// ErrAmbiguousOrderID means several tenants have a payment with the given orderId.
	ErrAmbiguousOrderID = errors.New("vippssim: orderId is used by more than one merchant serial number")
	// ErrNotPending means the payment is no longer waiting for the user (it was
	// approved, rejected, cancelled or expired before).
	ErrNotPending = errors.New("vippssim: payment is not waiting for the user")
	// ErrInvalidPhone means a phone number is not 8 digits.
	ErrInvalidPhone = errors.New("vippssim: phone number must be 8 digits")
	// ErrInvalidAddress means an Express address lacks what the shippingDetails request must carry: an
	// addressLine1, a city and a postcode of 4 digits.
	ErrInvalidAddress = errors.New("vippssim: an express address needs addressLine1, city and a 4-digit postCode")
)

// vippsError is one element of the eCom error array (schema Error).
type vippsError struct {
	ErrorGroup   string `json:"errorGroup"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	ContextID    string `json:"contextId,omitempty"`
}

// azureError is the spec's ErrorFromAzure: what API Management answers before
// the request reaches Vipps's own code (authentication, unknown routes).
type azureError struct {
	ResponseInfo struct {
		ResponseCode    int    `json:"responseCode"`
		ResponseMessage string `json:"responseMessage"`
	} `json:"responseInfo"`
	Result struct {
		Message string `json:"message"`
	} `json:"result"`
}

// apiError is an error answer: either Vipps's array or Azure's object.
type apiError struct {
	status int
	errs   []vippsError
	azure  string // message of an Azure-style error when errs is empty
}

func newVippsError(status int, group, code, format string, args ...any) *apiError {
	return &apiError{status: status, errs: []vippsError{{
		ErrorGroup: group, ErrorCode: code, ErrorMessage: fmt.Sprintf(format, args...),
	}}}
}

func newAzureError(status int, msg string) *apiError {
	return &apiError{status: status, azure: msg}
}

func invalidRequest(code, format string, args ...any) *apiError {
	return newVippsError(http.StatusBadRequest, groupInvalidRequest, code, format, args...)
}

func unknownOrder(orderID string) *apiError {
	return newVippsError(http.StatusNotFound, groupMerchant, "35",
		"Requested Order not found: orderId %q does not exist for this merchant serial number", orderID)
}

const jsonContentType = "application/json;charset=UTF-8"

// writeAPIError writes e in its shape, giving every Vipps error a fresh contextId.
func writeAPIError(w http.ResponseWriter, e *apiError) {
	if len(e.errs) == 0 {
		var body azureError
		body.ResponseInfo.ResponseCode = e.status
		body.ResponseInfo.ResponseMessage = http.StatusText(e.status)
		body.Result.Message = e.azure
		writeJSON(w, e.status, body)
		return
	}
	out := make([]vippsError, len(e.errs))
	for i, ve := range e.errs {
		ve.ContextID = newUUID()
		out[i] = ve
	}
	writeJSON(w, e.status, out)
}

// marshal encodes v like json.Marshal, but leaves &, < and > as they are
// (the landing page url contains &), as Vipps's API does.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := marshal(v)
	if err != nil {
		// Only our own plain structs are marshalled; this cannot happen.
		http.Error(w, `{"message":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// newUUID returns a random RFC 4122 version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

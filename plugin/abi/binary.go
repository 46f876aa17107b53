package abi

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// This file is ABI version 2's input encoding (plugin/ABI.md, "Version 2 input"): a compact binary form of
// Input that a guest decodes without parsing JSON. Its layout, in the order written:
//
//	u8 BinaryMagic, str op,
//	merchant: str id, str merchantSerialNumber, str callbackPrefix, str fallBack, str transactionTextPrefix,
//	  opt express { str shippingDetailsPrefix, str consentRemovalPrefix, str mode,
//	    list methods { str id, str name, i64 cost, bool default, bool pickupPoint, strs countries,
//	      strs postCodePrefixes },
//	    list rules { strs methods, strs countries, strs postCodePrefixes, i64 minAmount, i64 cost } },
//	session: str id, str reference, str providerReference, str state, i64 amount, str currency,
//	  str description, str customerPhone, i64 authorizedAmount, i64 capturedAmount, i64 refundedAmount,
//	  i64 cancelledAmount, list lines { str sku, str name, i64 quantity, i64 unitPrice }, str userFlow,
//	opt operation { i64 amount, str text }, opt response { i64 status, raw body }, raw callback
//
// where str is a u32 byte length and the UTF-8 bytes, i64 eight bytes two's complement, bool and opt a u8
// 0 or 1 (opt then followed by the part when 1), list and strs a u32 count (NilCount for an absent list)
// and the elements, raw a u32 length and one JSON value (0: absent). Integers are little-endian. Bytes after
// the callback are ignored, so that a later revision may append fields.

// Encoding versions: the ABI version a module reports names the encoding of its input.
const (
	// VersionJSON is ABI version 1: the input is Input as one JSON object.
	VersionJSON = 1
	// VersionBinary is ABI version 2: the input is Input in the binary encoding of AppendBinary.
	VersionBinary = 2
)

// Supported reports whether a module that answers v from kasse_abi_version can be loaded.
func Supported(v int) bool { return v == VersionJSON || v == VersionBinary }

// BinaryMagic is the first byte of every version 2 input. No JSON text starts with it (it is not ASCII, nor
// a UTF-8 lead byte), so a JSON input can never be read as a binary one, nor the reverse.
const BinaryMagic byte = 0xB2

// NilCount is the count of a list that is absent (a nil slice), as opposed to empty (count 0).
const NilCount = 0xFFFFFFFF

// IsBinary reports whether data is in the binary encoding (starts with BinaryMagic).
func IsBinary(data []byte) bool { return len(data) > 0 && data[0] == BinaryMagic }

// AppendBinary appends in's binary encoding to dst and returns the extended buffer. It reflects on nothing
// and allocates only to grow dst.
//
// A guest decodes from it what it decodes from in's JSON (json.Marshal) in version 1: strings that are not
// valid UTF-8 have each invalid byte replaced by U+FFFD, as encoding/json writes them, and a list whose
// JSON member is omitempty (every list but Shipping.Methods) is written absent when empty. The raw members
// (Callback, Response.Body) are copied as they are, not compacted: the caller makes sure they are JSON.
func AppendBinary(dst []byte, in *Input) []byte {
	dst = append(dst, BinaryMagic)
	dst = appendStr(dst, string(in.Op))
	m := &in.Merchant
	dst = appendStr(dst, m.ID)
	dst = appendStr(dst, m.MerchantSerialNumber)
	dst = appendStr(dst, m.CallbackPrefix)
	dst = appendStr(dst, m.FallBack)
	dst = appendStr(dst, m.TransactionTextPrefix)
	if e := m.Express; e == nil {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = appendStr(dst, e.ShippingDetailsPrefix)
		dst = appendStr(dst, e.ConsentRemovalPrefix)
		dst = appendStr(dst, e.Shipping.Mode)
		dst = appendCount(dst, e.Shipping.Methods == nil, len(e.Shipping.Methods))
		for i := range e.Shipping.Methods {
			sm := &e.Shipping.Methods[i]
			dst = appendStr(dst, sm.ID)
			dst = appendStr(dst, sm.Name)
			dst = binary.LittleEndian.AppendUint64(dst, uint64(sm.Cost))
			dst = append(dst, boolByte(sm.Default), boolByte(sm.PickupPoint))
			dst = appendStrs(dst, sm.Countries)
			dst = appendStrs(dst, sm.PostCodePrefixes)
		}
		dst = appendCount(dst, len(e.Shipping.Rules) == 0, len(e.Shipping.Rules))
		for i := range e.Shipping.Rules {
			r := &e.Shipping.Rules[i]
			dst = appendStrs(dst, r.Methods)
			dst = appendStrs(dst, r.Countries)
			dst = appendStrs(dst, r.PostCodePrefixes)
			dst = binary.LittleEndian.AppendUint64(dst, uint64(r.MinAmount))
			dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Cost))
		}
	}
	s := &in.Session
	dst = appendStr(dst, s.ID)
	dst = appendStr(dst, s.Reference)
	dst = appendStr(dst, s.ProviderReference)
	dst = appendStr(dst, s.State)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(s.Amount))
	dst = appendStr(dst, s.Currency)
	dst = appendStr(dst, s.Description)
	dst = appendStr(dst, s.CustomerPhone)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(s.AuthorizedAmount))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(s.CapturedAmount))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(s.RefundedAmount))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(s.CancelledAmount))
	dst = appendCount(dst, len(s.Lines) == 0, len(s.Lines))
	for i := range s.Lines {
		l := &s.Lines[i]
		dst = appendStr(dst, l.SKU)
		dst = appendStr(dst, l.Name)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(l.Quantity))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(l.UnitPrice))
	}
	dst = appendStr(dst, s.UserFlow)
	if op := in.Operation; op == nil {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(op.Amount))
		dst = appendStr(dst, op.Text)
	}
	if r := in.Response; r == nil {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(int64(r.Status)))
		dst = appendRaw(dst, r.Body)
	}
	return appendRaw(dst, in.Callback)
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func appendCount(dst []byte, isNil bool, n int) []byte {
	if isNil {
		return binary.LittleEndian.AppendUint32(dst, NilCount)
	}
	return binary.LittleEndian.AppendUint32(dst, uint32(n))
}

func appendRaw(dst []byte, raw []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(raw)))
	return append(dst, raw...)
}

// appendStrs appends a list of strings. Every []string of Input is omitempty in JSON, so an empty one is
// absent here too.
func appendStrs(dst []byte, list []string) []byte {
	dst = appendCount(dst, len(list) == 0, len(list))
	for _, s := range list {
		dst = appendStr(dst, s)
	}
	return dst
}

func appendStr(dst []byte, s string) []byte {
	if utf8.ValidString(s) {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
		return append(dst, s...)
	}
	// Rare: replace each byte of an invalid sequence with U+FFFD, as encoding/json writes it.
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}

// Minimum encoded sizes of list elements: a count larger than what is left divided by these is refused
// before anything is allocated for it.
const (
	minStr    = 4
	minMethod = 4 + 4 + 8 + 1 + 1 + 4 + 4
	minRule   = 4 + 4 + 4 + 8 + 8
	minLine   = 4 + 4 + 8 + 8
)

// Decoder decodes the binary encoding into a reused Input. Strings and the raw members alias the decoded
// bytes (no copy): they are valid as long as those bytes are unchanged. Once its slices have grown to the
// inputs it sees, decoding allocates nothing. The zero Decoder is ready to use; it is not safe for
// concurrent use.
type Decoder struct {
	in      Input
	op      Operation
	resp    Response
	express Express
	lines   []Line
	methods []ShippingMethod
	rules   []ShippingRule
	strs    []string // backing of every []string field
	data    []byte
	pos     int
	// The first failure: the field, its kind (0: none yet) and the offset of the bytes that failed.
	errField string
	errKind  int
	errAt    int
}

// Decode decodes data, which must start with BinaryMagic. The returned Input is the decoder's own, valid
// until the next Decode and while data is unchanged. Malformed input (a length or count beyond the end of
// data, a bool or presence byte other than 0 or 1) is an error naming the field and offset; Decode never
// reads outside data and never panics.
func (d *Decoder) Decode(data []byte) (*Input, error) {
	d.data, d.pos, d.errKind = data, 1, 0
	d.strs = d.strs[:0]
	if len(data) == 0 {
		return nil, errors.New("abi: binary input is empty")
	}
	if data[0] != BinaryMagic {
		return nil, errors.New("abi: input does not start with the binary magic byte 0xb2 (first byte " +
			strconv.Quote(string(data[:1])) + ")")
	}
	in := &d.in
	*in = Input{Op: Op(d.str("op"))}
	m := &in.Merchant
	m.ID = d.str("merchant.id")
	m.MerchantSerialNumber = d.str("merchant.merchantSerialNumber")
	m.CallbackPrefix = d.str("merchant.callbackPrefix")
	m.FallBack = d.str("merchant.fallBack")
	m.TransactionTextPrefix = d.str("merchant.transactionTextPrefix")
	if d.flag("merchant.express") {
		e := &d.express
		e.ShippingDetailsPrefix = d.str("merchant.express.shippingDetailsPrefix")
		e.ConsentRemovalPrefix = d.str("merchant.express.consentRemovalPrefix")
		e.Shipping.Mode = d.str("merchant.express.shipping.mode")
		e.Shipping.Methods = d.decodeMethods()
		e.Shipping.Rules = d.decodeRules()
		m.Express = e
	}
	s := &in.Session
	s.ID = d.str("session.id")
	s.Reference = d.str("session.reference")
	s.ProviderReference = d.str("session.providerReference")
	s.State = d.str("session.state")
	s.Amount = d.i64("session.amount")
	s.Currency = d.str("session.currency")
	s.Description = d.str("session.description")
	s.CustomerPhone = d.str("session.customerPhone")
	s.AuthorizedAmount = d.i64("session.authorizedAmount")
	s.CapturedAmount = d.i64("session.capturedAmount")
	s.RefundedAmount = d.i64("session.refundedAmount")
	s.CancelledAmount = d.i64("session.cancelledAmount")
	s.Lines = d.decodeLines()
	s.UserFlow = d.str("session.userFlow")
	if d.flag("operation") {
		d.op = Operation{Amount: d.i64("operation.amount"), Text: d.str("operation.text")}
		in.Operation = &d.op
	}
	if d.flag("response") {
		d.resp = Response{Status: int(d.i64("response.status")), Body: d.raw("response.body")}
		in.Response = &d.resp
	}
	in.Callback = d.raw("callback")
	if d.errKind != 0 {
		return nil, d.failure()
	}
	return in, nil
}

// The primitives below are small enough for the compiler to inline into Decode (a call costs a Go wasm
// guest far more than the read): each has one cold call, fail, which records the first error, and the
// message is only built once decoding ends (failure). After a failure every read fails at once, so a
// malformed input is read no further.

// Failure kinds, for the message Decode builds.
const (
	errTruncated = iota + 1
	errLength
	errFlag
	errCount
)

//go:noinline
func (d *Decoder) fail(field string, kind, at int) {
	if d.errKind == 0 {
		d.errField, d.errKind, d.errAt = field, kind, at
	}
	d.pos = len(d.data) + 1 // every later read fails
}

// failFlag records a flag that is missing or neither 0 nor 1.
//
//go:noinline
func (d *Decoder) failFlag(field string, p int) {
	if p < len(d.data) {
		d.fail(field, errFlag, p)
	} else {
		d.fail(field, errTruncated, p)
	}
}

// failure returns the recorded failure as an error naming the field and the offset.
func (d *Decoder) failure() error {
	var what string
	switch d.errKind {
	case errTruncated:
		what = "truncated"
	case errLength:
		what = "length " + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(d.data[d.errAt:])), 10) + " exceeds the " +
			strconv.Itoa(len(d.data)-d.errAt-4) + " bytes left"
	case errFlag:
		what = "byte " + strconv.Itoa(int(d.data[d.errAt])) + " is neither 0 nor 1"
	case errCount:
		what = "count " + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(d.data[d.errAt:])), 10) +
			" exceeds what the " + strconv.Itoa(len(d.data)-d.errAt-4) + " bytes left can hold"
	}
	return errors.New("abi: binary input: " + d.errField + ": " + what + " at offset " + strconv.Itoa(d.errAt))
}

func (d *Decoder) u32(field string) uint32 {
	p := d.pos
	if p > len(d.data)-4 {
		d.fail(field, errTruncated, p)
		return 0
	}
	d.pos = p + 4
	return binary.LittleEndian.Uint32(d.data[p:])
}

func (d *Decoder) i64(field string) int64 {
	p := d.pos
	if p > len(d.data)-8 {
		d.fail(field, errTruncated, p)
		return 0
	}
	d.pos = p + 8
	return int64(binary.LittleEndian.Uint64(d.data[p:]))
}

func (d *Decoder) flag(field string) bool {
	p := d.pos
	if p >= len(d.data) || d.data[p] > 1 {
		d.failFlag(field, p)
		return false
	}
	d.pos = p + 1
	return d.data[p] == 1
}

// bytes returns the next length-prefixed bytes, aliasing the input.
func (d *Decoder) bytes(field string) []byte {
	p := d.pos
	if p > len(d.data)-4 {
		d.fail(field, errTruncated, p)
		return nil
	}
	n := int(binary.LittleEndian.Uint32(d.data[p:]))
	if n > len(d.data)-p-4 {
		d.fail(field, errLength, p)
		return nil
	}
	d.pos = p + 4 + n
	return d.data[p+4 : d.pos : d.pos]
}

func (d *Decoder) str(field string) string {
	b := d.bytes(field)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (d *Decoder) raw(field string) json.RawMessage {
	b := d.bytes(field)
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

// count reads a list's count: -1 for an absent list. A count that cannot fit in what is left of the input
// (at min bytes an element) is refused, so a hostile count allocates nothing.
func (d *Decoder) count(field string, min int) int {
	p := d.pos
	n := d.u32(field)
	if n == NilCount || d.errKind != 0 {
		return -1
	}
	if uint64(n)*uint64(min) > uint64(len(d.data)-d.pos) {
		d.fail(field, errCount, p)
		return -1
	}
	return int(n)
}

// strList reads a list of strings; elem names its elements in errors (a constant: concatenating field and
// "[]" here would allocate on every call).
func (d *Decoder) strList(field, elem string) []string {
	n := d.count(field, minStr)
	if n < 0 {
		return nil
	}
	start := len(d.strs)
	for range n {
		d.strs = append(d.strs, d.str(elem))
	}
	return d.strs[start:len(d.strs):len(d.strs)]
}

func (d *Decoder) decodeLines() []Line {
	n := d.count("session.lines", minLine)
	if n < 0 {
		return nil
	}
	if cap(d.lines) < n {
		d.lines = make([]Line, n, max(n, 8))
	}
	list := d.lines[:n]
	for i := range list {
		list[i] = Line{SKU: d.str("session.lines[].sku"), Name: d.str("session.lines[].name"),
			Quantity: d.i64("session.lines[].quantity"), UnitPrice: d.i64("session.lines[].unitPrice")}
	}
	return list
}

func (d *Decoder) decodeMethods() []ShippingMethod {
	const name = "merchant.express.shipping.methods"
	n := d.count(name, minMethod)
	if n < 0 {
		return nil
	}
	if cap(d.methods) < n {
		d.methods = make([]ShippingMethod, n, max(n, 4))
	}
	list := d.methods[:n]
	for i := range list {
		list[i] = ShippingMethod{ID: d.str(name + "[].id"), Name: d.str(name + "[].name"), Cost: d.i64(name + "[].cost"),
			Default: d.flag(name + "[].default"), PickupPoint: d.flag(name + "[].pickupPoint"),
			Countries: d.strList(name+"[].countries", name+"[].countries[]"), PostCodePrefixes: d.strList(name+"[].postCodePrefixes", name+"[].postCodePrefixes[]")}
	}
	return list
}

func (d *Decoder) decodeRules() []ShippingRule {
	const name = "merchant.express.shipping.rules"
	n := d.count(name, minRule)
	if n < 0 {
		return nil
	}
	if cap(d.rules) < n {
		d.rules = make([]ShippingRule, n, max(n, 4))
	}
	list := d.rules[:n]
	for i := range list {
		list[i] = ShippingRule{Methods: d.strList(name+"[].methods", name+"[].methods[]"), Countries: d.strList(name+"[].countries", name+"[].countries[]"),
			PostCodePrefixes: d.strList(name+"[].postCodePrefixes", name+"[].postCodePrefixes[]"), MinAmount: d.i64(name + "[].minAmount"),
			Cost: d.i64(name + "[].cost")}
	}
	return list
}

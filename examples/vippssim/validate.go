package vippssim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

const maxBodyBytes = 64 << 10

var (
	orderIDPattern = regexp.MustCompile(`^[a-zA-Z0-9-]{1,50}$`)
	phonePattern   = regexp.MustCompile(`^\d{8}$`)
	schemePattern  = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*$`)
)

// readJSONBody checks the media type and decodes the body as one JSON object,
// keeping numbers as json.Number so that integers can be told from decimals.
func readJSONBody(w http.ResponseWriter, r *http.Request) (map[string]any, *apiError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, newVippsError(http.StatusUnsupportedMediaType, groupInvalidRequest, "Content-Type.invalid",
			"Content-Type must be application/json")
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return nil, invalidRequest("requestBody.invalid", "request body could not be read (at most %d bytes)", maxBodyBytes)
	}
	obj, err := decodeObject(data)
	if err != nil {
		return nil, invalidRequest("requestBody.invalid", "request body is not a JSON object: %v", err)
	}
	return obj, nil
}

func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("want a JSON object")
	}
	return m, nil
}

// fields collects InvalidRequest errors whose errorCode is the field path
// plus ".missing" or ".invalid". All errors of a request are reported at once.
type fields struct {
	errs []vippsError
}

func (f *fields) add(path, suffix, format string, args ...any) {
	f.errs = append(f.errs, vippsError{
		ErrorGroup:   groupInvalidRequest,
		ErrorCode:    path + "." + suffix,
		ErrorMessage: path + ": " + fmt.Sprintf(format, args...),
	})
}

func (f *fields) invalid(path, format string, args ...any) { f.add(path, "invalid", format, args...) }

func (f *fields) err() *apiError {
	if len(f.errs) == 0 {
		return nil
	}
	return &apiError{status: http.StatusBadRequest, errs: f.errs}
}

// get returns parent[key]; JSON null counts as absent. A missing required
// field is reported.
func (f *fields) get(parent map[string]any, key, path string, required bool) (any, bool) {
	if parent == nil {
		return nil, false
	}
	v, ok := parent[key]
	if !ok || v == nil {
		if required {
			f.add(path, "missing", "is required")
		}
		return nil, false
	}
	return v, true
}

func (f *fields) object(parent map[string]any, key, path string, required bool) map[string]any {
	v, ok := f.get(parent, key, path, required)
	if !ok {
		return nil
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		f.invalid(path, "must be a JSON object")
		return nil
	}
	return m
}

// str returns a string field; maxLen counts characters (0: no limit). A
// required string must not be empty.
func (f *fields) str(parent map[string]any, key, path string, required bool, maxLen int) (string, bool) {
	v, ok := f.get(parent, key, path, required)
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		f.invalid(path, "must be a string")
		return "", false
	}
	if required && strings.TrimSpace(s) == "" {
		f.add(path, "missing", "must not be empty")
		return "", false
	}
	if maxLen > 0 && utf8.RuneCountInString(s) > maxLen {
		f.invalid(path, "must be at most %d characters", maxLen)
		return "", false
	}
	return s, true
}

// integer returns an integer field: a JSON number without fraction or exponent.
func (f *fields) integer(parent map[string]any, key, path string, required bool) (int64, bool) {
	v, ok := f.get(parent, key, path, required)
	if !ok {
		return 0, false
	}
	n, isNum := v.(json.Number)
	if !isNum {
		f.invalid(path, "must be an integer (minor units, øre)")
		return 0, false
	}
	i, err := n.Int64()
	if err != nil || strings.ContainsAny(n.String(), ".eE") {
		f.invalid(path, "must be an integer (minor units, øre)")
		return 0, false
	}
	return i, true
}

func (f *fields) number(parent map[string]any, key, path string, required bool) (float64, bool) {
	v, ok := f.get(parent, key, path, required)
	if !ok {
		return 0, false
	}
	n, isNum := v.(json.Number)
	if !isNum {
		f.invalid(path, "must be a number")
		return 0, false
	}
	x, err := n.Float64()
	if err != nil {
		f.invalid(path, "must be a number")
		return 0, false
	}
	return x, true
}

func (f *fields) boolean(parent map[string]any, key, path string) (bool, bool) {
	v, ok := f.get(parent, key, path, false)
	if !ok {
		return false, false
	}
	b, isBool := v.(bool)
	if !isBool {
		f.invalid(path, "must be true or false")
		return false, false
	}
	return b, true
}

// amount reads an amount in øre with the spec's minimum of 100.
func (f *fields) amount(parent map[string]any, key, path string, required bool) (int64, bool) {
	a, ok := f.integer(parent, key, path, required)
	if !ok {
		return 0, false
	}
	if a < 100 {
		f.invalid(path, "must be at least 100 (1 NOK, in øre)")
		return 0, false
	}
	return a, true
}

// merchantSerialNumber reads merchantInfo.merchantSerialNumber: a string of
// 5 or 6 digits (the spec types it as a string, not a number).
func (f *fields) merchantSerialNumber(mi map[string]any) (string, bool) {
	msn, ok := f.str(mi, "merchantSerialNumber", "merchantInfo.merchantSerialNumber", mi != nil, 0)
	if !ok {
		return "", false
	}
	if !msnPattern.MatchString(msn) {
		f.invalid("merchantInfo.merchantSerialNumber", "must be 5 or 6 digits")
		return "", false
	}
	return msn, true
}

// requestID reads X-Request-Id (at most 40 characters).
func requestID(r *http.Request, required bool) (string, *apiError) {
	id := r.Header.Get("X-Request-Id")
	if id == "" {
		if required {
			return "", invalidRequest("X-Request-Id.missing", "X-Request-Id header is required (idempotency key, at most 40 characters)")
		}
		return "", nil
	}
	if utf8.RuneCountInString(id) > 40 {
		return "", invalidRequest("X-Request-Id.invalid", "X-Request-Id must be at most 40 characters")
	}
	return id, nil
}

// urlRule says which URLs a merchant URL field accepts.
type urlRule struct {
	customScheme bool // fallBack: also myapp:// style app schemes
}

// checkURL applies Vipps's URL rules: at most 255 characters, absolute,
// HTTPS with a public host. With AllowHTTPLoopback, http and https URLs to
// loopback hosts are accepted as well.
func (s *Server) checkURL(f *fields, path, raw string, rule urlRule) {
	if strings.ContainsAny(raw, " \t\r\n") {
		f.invalid(path, "must be a valid URL without whitespace")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || !schemePattern.MatchString(u.Scheme) {
		f.invalid(path, "must be an absolute URL")
		return
	}
	host := u.Hostname()
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Opaque != "" || host == "" {
			f.invalid(path, "must be an absolute https URL with a host")
			return
		}
		if isLoopback(host) && !s.cfg.AllowHTTPLoopback {
			f.invalid(path, "must not point to localhost or a loopback address")
		}
	case "http":
		if !s.cfg.AllowHTTPLoopback || u.Opaque != "" || !isLoopback(host) {
			f.invalid(path, "must use HTTPS")
		}
	default:
		switch strings.ToLower(u.Scheme) {
		case "javascript", "data", "vbscript", "file", "ftp", "ws", "wss":
			f.invalid(path, "scheme %q is not allowed", u.Scheme)
			return
		}
		if !rule.customScheme {
			f.invalid(path, "must use HTTPS")
		}
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

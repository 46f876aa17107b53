package httpapi

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/kassehq/kasse/host/problem"
)

// maxCheckedBody bounds what requireJSON reads to check a body's encoding: the largest body any public
// route accepts (the platform hooks' limit). Each route still applies its own, smaller, limit.
const maxCheckedBody = 1 << 20

// wooCommercePing is the body of the unsigned ping WooCommerce sends, form-encoded, when a webhook is
// created; it must get a 200, so it is the one non-JSON body the hooks accept.
var wooCommercePing = regexp.MustCompile(`^webhook_id=[0-9]{1,20}$`)

// requireJSON refuses a request body that is not JSON: a body with a Content-Type other than
// application/json (a charset parameter, if any, must be utf-8) gets 415, and one that is not valid UTF-8
// gets 400, before any handler reads it. Bodies were decoded as JSON whatever their type, and invalid
// UTF-8 was silently replaced by U+FFFD; now neither reaches a handler. Requests without a body pass.
func (a *api) requireJSON(c *gin.Context) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		c.Next()
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCheckedBody+1))
	if err != nil {
		abortProblem(c, problem.Problem{Type: problem.Base + "invalid-request", Title: "Request body could not be read",
			Status: http.StatusBadRequest, Detail: "the request body could not be read"})
		return
	}
	if len(body) > maxCheckedBody {
		abortProblem(c, problemFor(&http.MaxBytesError{Limit: maxCheckedBody}))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) == 0 {
		c.Next()
		return
	}
	ct := r.Header.Get("Content-Type")
	if !isJSONType(ct) && !(strings.HasPrefix(r.URL.Path, "/hooks/") && isFormType(ct) &&
		wooCommercePing.Match(bytes.TrimSpace(body))) {
		abortProblem(c, problem.Problem{Type: problem.Base + "unsupported-media-type", Title: "Unsupported media type",
			Status: http.StatusUnsupportedMediaType,
			Detail: "the request body must be JSON, sent with Content-Type: application/json"})
		return
	}
	if !utf8.Valid(body) {
		abortProblem(c, problem.Problem{Type: problem.Base + "invalid-request", Title: "Request body is invalid",
			Status: http.StatusBadRequest, Detail: "the request body is not valid UTF-8"})
		return
	}
	c.Next()
}

// isJSONType reports whether a Content-Type is application/json with, at most, a utf-8 charset.
func isJSONType(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// isFormType reports whether a Content-Type is missing or application/x-www-form-urlencoded (WordPress
// sends its ping with either, depending on the version).
func isFormType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

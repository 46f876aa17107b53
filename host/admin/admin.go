// Package admin owns kasse's plugin administration API: a gin route group under /admin/v1/ through which
// an operator lists plugins and their versions, uploads a signed bundle, activates a version, starts a
// canary or a shadow run, rolls back and reads the history. Every route needs "Authorization: Bearer
// <token>" with the token from the environment variable the config names (admin.tokenEnv), compared in
// constant time. The work is host/upgrade's; this package only speaks HTTP and answers errors as RFC 9457
// problem documents.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/problem"
	"github.com/kassehq/kasse/host/upgrade"
)

// Prefix is where the admin routes live.
const Prefix = "/admin/v1"

// MinTokenLength is the shortest token New accepts.
const MinTokenLength = 16

// Config configures the admin API.
type Config struct {
	// Manager does the work. Required.
	Manager *upgrade.Manager
	// Token is the bearer token callers must present. Required, at least MinTokenLength characters.
	Token string
	// MaxModuleBytes bounds an upload's module, as plugins.maxModuleBytes does; 0 means
	// upgrade.DefaultMaxModuleBytes. The whole upload may be that plus 16 MiB for the other files.
	MaxModuleBytes int64
	// Logger receives one line per change. Default slog.Default().
	Logger *slog.Logger
}

// API is the admin API.
type API struct {
	m        *upgrade.Manager
	tokenSum [sha256.Size]byte
	maxBytes int64
	log      *slog.Logger
}

// New returns the admin API, or an error when the manager or a long enough token is missing.
func New(cfg Config) (*API, error) {
	switch {
	case cfg.Manager == nil:
		return nil, errors.New("admin: config: Manager is required")
	case len(cfg.Token) < MinTokenLength:
		return nil, fmt.Errorf("admin: config: Token must be at least %d characters", MinTokenLength)
	}
	a := &API{m: cfg.Manager, tokenSum: sha256.Sum256([]byte(cfg.Token)), maxBytes: cfg.MaxModuleBytes, log: cfg.Logger}
	if a.maxBytes <= 0 {
		a.maxBytes = upgrade.DefaultMaxModuleBytes
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	return a, nil
}

// Mount adds the admin routes under Prefix to r: the operations router (httpapi.OpsConfig.Mount), never
// the public one.
//
//	GET    /admin/v1/status                   readiness, every plugin's status, refused stray bundles
//	GET    /admin/v1/plugins                  every plugin's status with its versions
//	GET    /admin/v1/plugins/:name            one plugin's status
//	GET    /admin/v1/plugins/:name/history    its events, oldest first
//	POST   /admin/v1/plugins/:name/versions   upload a bundle (multipart: module, manifest, signature, golden;
//	                                          optional mode=stage|activate|canary, percent and force=true)
//	POST   /admin/v1/plugins/:name/activate   {"version": "1.2.0"}; "force": true to go below a version
//	                                          activated before (else 409)
//	POST   /admin/v1/plugins/:name/canary     {"version": "1.2.0", "percent": 10}; percent 0 ends it; "force" too
//	POST   /admin/v1/plugins/:name/shadow     {"version": "1.2.0"}
//	DELETE /admin/v1/plugins/:name/shadow
//	POST   /admin/v1/plugins/:name/rollback
func (a *API) Mount(r gin.IRouter) {
	g := r.Group(Prefix, a.authorize)
	g.GET("/status", a.status)
	g.GET("/plugins", a.list)
	g.GET("/plugins/:name", a.plugin)
	g.GET("/plugins/:name/history", a.history)
	g.POST("/plugins/:name/versions", a.upload)
	g.POST("/plugins/:name/activate", a.activate)
	g.POST("/plugins/:name/canary", a.canary)
	g.POST("/plugins/:name/shadow", a.shadow)
	g.DELETE("/plugins/:name/shadow", a.stopShadow)
	g.POST("/plugins/:name/rollback", a.rollback)
}

// authorize compares the bearer token in constant time (over digests, so the length leaks nothing either).
func (a *API) authorize(c *gin.Context) {
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(got))
	if !ok || subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="kasse-admin"`)
		abort(c, http.StatusUnauthorized, "unauthorized", "Unauthorized",
			"the admin API needs Authorization: Bearer <token> with the token from admin.tokenEnv")
		return
	}
	c.Next()
}

// abort answers a problem of type admin-<kind> (the admin API's own problems; host/problem writes them).
func abort(c *gin.Context, status int, kind, title, detail string) {
	problem.Abort(c, c.Writer.Header().Get("X-Request-Id"), problem.New(status, "admin-"+kind, title, detail))
}

// fail answers err as a problem: a refused version is 422 with its rule, an unknown plugin or version
// 404, nothing to roll back to 409.
func (a *API) fail(c *gin.Context, err error) {
	var re *upgrade.RefusedError
	switch {
	case errors.As(err, &re):
		abort(c, http.StatusUnprocessableEntity, "refused-"+string(re.Rule), "Plugin version refused", err.Error())
	case errors.Is(err, upgrade.ErrUnknownPlugin), errors.Is(err, upgrade.ErrUnknownVersion):
		abort(c, http.StatusNotFound, "not-found", "Not found", err.Error())
	case errors.Is(err, upgrade.ErrNoPrevious), errors.Is(err, upgrade.ErrRefusedVersion), errors.Is(err, upgrade.ErrNotNewer):
		abort(c, http.StatusConflict, "conflict", "Conflict", err.Error())
	default:
		abort(c, http.StatusBadRequest, "invalid-request", "Request refused", err.Error())
	}
}

type statusBody struct {
	Ready    bool             `json:"ready"`
	Error    string           `json:"error,omitempty"`
	Plugins  []upgrade.Status `json:"plugins"`
	Refusals []upgrade.Event  `json:"refusals,omitempty"`
}

func (a *API) status(c *gin.Context) {
	body := statusBody{Ready: true, Plugins: a.m.Statuses(), Refusals: a.m.Refusals()}
	if err := a.m.Ready(); err != nil {
		body.Ready, body.Error = false, err.Error()
	}
	if body.Plugins == nil {
		body.Plugins = []upgrade.Status{}
	}
	c.JSON(http.StatusOK, body)
}

func (a *API) list(c *gin.Context) {
	sts := a.m.Statuses()
	if sts == nil {
		sts = []upgrade.Status{}
	}
	c.JSON(http.StatusOK, gin.H{"plugins": sts})
}

func (a *API) plugin(c *gin.Context) {
	st, err := a.m.Status(c.Param("name"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (a *API) history(c *gin.Context) {
	events, err := a.m.History(c.Param("name"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"events": events})
}

// upload reads a multipart bundle: the parts module (required), manifest, signature and golden, and the
// optional fields mode and percent.
func (a *API) upload(c *gin.Context) {
	name := c.Param("name")
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, a.maxBytes+16<<20)
	if err := c.Request.ParseMultipartForm(1 << 20); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			abort(c, http.StatusRequestEntityTooLarge, "too-large", "Upload too large",
				fmt.Sprintf("the upload exceeds %d bytes", mbe.Limit))
			return
		}
		abort(c, http.StatusBadRequest, "invalid-request", "Request refused", "want a multipart/form-data upload: "+err.Error())
		return
	}
	defer func() { _ = c.Request.MultipartForm.RemoveAll() }()
	b := upgrade.Bundle{Stem: name}
	for _, part := range []struct {
		field    string
		dst      *[]byte
		limit    int64
		required bool
	}{
		{"module", &b.Module, a.maxBytes, true},
		{"manifest", &b.Manifest, 1 << 20, false},
		{"signature", &b.Signature, 4 << 10, false},
		{"golden", &b.Golden, 16 << 20, false},
	} {
		data, err := formFile(c.Request.MultipartForm, part.field, part.limit)
		if err != nil {
			var re *upgrade.RefusedError
			if errors.As(err, &re) {
				a.fail(c, err)
				return
			}
			abort(c, http.StatusBadRequest, "invalid-request", "Request refused", err.Error())
			return
		}
		if data == nil && part.required {
			abort(c, http.StatusBadRequest, "invalid-request", "Request refused", "the upload has no module part")
			return
		}
		*part.dst = data
	}
	if len(b.Manifest) > 0 {
		var m struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(b.Manifest, &m) == nil && m.Name != name {
			abort(c, http.StatusUnprocessableEntity, "name-mismatch", "Plugin name mismatch",
				fmt.Sprintf("the manifest names plugin %q, the URL %q", m.Name, name))
			return
		}
	}
	act := upgrade.Activation{Mode: upgrade.Mode(c.Request.FormValue("mode"))}
	if act.Mode == "" {
		act.Mode = upgrade.ModeStage
	}
	if p := c.Request.FormValue("percent"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			abort(c, http.StatusBadRequest, "invalid-request", "Request refused", "percent must be an integer")
			return
		}
		act.Percent = n
	}
	switch f := c.Request.FormValue("force"); f {
	case "", "false":
	case "true":
		act.Force = true
	default:
		abort(c, http.StatusBadRequest, "invalid-request", "Request refused", "force must be true or false")
		return
	}
	info, err := a.m.Apply(c.Request.Context(), upgrade.Update{Source: upgrade.SourceUpload, Bundle: b}, act)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.log.Info("admin: plugin uploaded", "plugin", info.Plugin, "version", info.Version, "mode", act.Mode, "unchanged", info.Unchanged)
	status := http.StatusCreated
	if info.Unchanged {
		status = http.StatusOK
	}
	c.JSON(status, info)
}

// formFile reads one file part, nil when absent, refusing it past limit.
func formFile(form *multipart.Form, field string, limit int64) ([]byte, error) {
	fhs := form.File[field]
	if len(fhs) == 0 {
		return nil, nil
	}
	if len(fhs) > 1 {
		return nil, fmt.Errorf("the upload has %d %s parts, want one", len(fhs), field)
	}
	if fhs[0].Size > limit {
		return nil, &upgrade.RefusedError{Rule: upgrade.RuleSize,
			Err: fmt.Errorf("%s is %d bytes, over the limit of %d", field, fhs[0].Size, limit)}
	}
	f, err := fhs[0].Open()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", field, err)
	}
	defer func() { _ = f.Close() }()
	return io.ReadAll(io.LimitReader(f, limit))
}

type versionRequest struct {
	Version string `json:"version"`
	Percent *int   `json:"percent"`
	Force   bool   `json:"force"`
}

func (r versionRequest) options() []upgrade.Option {
	if r.Force {
		return []upgrade.Option{upgrade.Force()}
	}
	return nil
}

func (a *API) readVersion(c *gin.Context, needPercent bool) (versionRequest, bool) {
	var req versionRequest
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Version == "" || (needPercent && req.Percent == nil) {
		want := `{"version": "..."}`
		if needPercent {
			want = `{"version": "...", "percent": 0..100}`
		}
		abort(c, http.StatusBadRequest, "invalid-request", "Request refused", "the body must be "+want)
		return req, false
	}
	return req, true
}

// changed answers a successful change with the plugin's status and logs it.
func (a *API) changed(c *gin.Context, what string, args ...any) {
	name := c.Param("name")
	a.log.Info("admin: "+what, append([]any{"plugin", name}, args...)...)
	st, err := a.m.Status(name)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (a *API) activate(c *gin.Context) {
	req, ok := a.readVersion(c, false)
	if !ok {
		return
	}
	if err := a.m.Activate(c.Request.Context(), c.Param("name"), req.Version, req.options()...); err != nil {
		a.fail(c, err)
		return
	}
	a.changed(c, "plugin activated", "version", req.Version, "force", req.Force)
}

func (a *API) canary(c *gin.Context) {
	req, ok := a.readVersion(c, true)
	if !ok {
		return
	}
	if err := a.m.Canary(c.Request.Context(), c.Param("name"), req.Version, *req.Percent, req.options()...); err != nil {
		a.fail(c, err)
		return
	}
	a.changed(c, "plugin canary", "version", req.Version, "percent", *req.Percent)
}

func (a *API) shadow(c *gin.Context) {
	req, ok := a.readVersion(c, false)
	if !ok {
		return
	}
	if err := a.m.Shadow(c.Request.Context(), c.Param("name"), req.Version); err != nil {
		a.fail(c, err)
		return
	}
	a.changed(c, "plugin shadow started", "version", req.Version)
}

func (a *API) stopShadow(c *gin.Context) {
	if err := a.m.StopShadow(c.Param("name")); err != nil {
		a.fail(c, err)
		return
	}
	a.changed(c, "plugin shadow stopped")
}

func (a *API) rollback(c *gin.Context) {
	if err := a.m.Rollback(c.Request.Context(), c.Param("name")); err != nil {
		a.fail(c, err)
		return
	}
	a.changed(c, "plugin rolled back")
}

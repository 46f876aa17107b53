// Package redact owns the removal of credentials from text kasse logs or stores: the values of query
// parameters that carry credentials in URLs (WooCommerce's OAuth 1.0a over plain http puts
// oauth_consumer_key and oauth_signature in the query; Go's HTTP client quotes the whole URL in its
// errors), and user info in URLs. It offers a function for strings and a slog.Handler that applies it to
// every message and attribute.
package redact

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
)

// Redacted replaces what was removed.
const Redacted = "[redacted]"

var (
	// credentialParam matches a query parameter whose name says it carries a credential, up to its value.
	credentialParam = regexp.MustCompile(`(?i)([?&;](?:oauth_[a-z_]*|consumer_(?:key|secret)|client_secret|access_token|api_?key|apikey|token|key|secret|signature|sig|password|passwd|auth)=)[^&\s"'<>]*`)
	// userInfo matches the user info of a URL: scheme://user:password@host.
	userInfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s"']+@`)
)

// String returns s with credential query values and URL user info replaced by Redacted.
func String(s string) string {
	// Most values (ids, states, causes) hold nothing either pattern can match: a credential parameter
	// needs one of ?&; and an =, user info needs :// and an @. Checking for those first spares every log
	// line the two regular expressions.
	if strings.ContainsAny(s, "?&;") && strings.IndexByte(s, '=') >= 0 {
		s = credentialParam.ReplaceAllString(s, "${1}"+Redacted)
	}
	if strings.Contains(s, "://") && strings.IndexByte(s, '@') >= 0 {
		s = userInfo.ReplaceAllString(s, "${1}"+Redacted+"@")
	}
	return s
}

// Handler wraps h so that every message and attribute (errors included) is passed through String.
func Handler(h slog.Handler) slog.Handler { return &handler{next: h} }

type handler struct{ next slog.Handler }

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = attr(a)
	}
	return &handler{next: h.next.WithAttrs(clean)}
}

func (h *handler) WithGroup(name string) slog.Handler { return &handler{next: h.next.WithGroup(name)} }

func attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, ga := range g {
			clean[i] = attr(ga)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, String(x.Error()))
		case interface{ String() string }:
			return slog.String(a.Key, String(x.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

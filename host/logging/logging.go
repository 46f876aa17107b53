// Package logging owns how kasse writes its log lines: it builds the slog logger from the log settings
// (text or JSON, a least severe level), every line passing through host/internal/redact, and routes what
// libraries log (go-redis) into that logger, so one process writes one format. It also writes an error
// that lists several problems (a config file's) as one line per problem, never one line with "\n" in it.
// It keeps no state; go-redis's logger is a process-wide setting of go-redis, set by the command.
package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/internal/redact"
)

// ParseLevel reads a level name: "debug", "info", "warn" or "error" ("" is info).
func ParseLevel(name string) (slog.Level, error) {
	switch strings.ToLower(name) {
	case "", config.LogInfo:
		return slog.LevelInfo, nil
	case config.LogDebug:
		return slog.LevelDebug, nil
	case config.LogWarn, "warning":
		return slog.LevelWarn, nil
	case config.LogError:
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logging: level %q: must be debug, info, warn or error", name)
}

// New returns a logger that writes to w in format ("text", the default when "", or "json") the lines at
// level (see ParseLevel) or above, each redacted (credentials in URL queries removed).
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	lv, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "", config.LogText:
		h = slog.NewTextHandler(w, opts)
	case config.LogJSON:
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("logging: format %q: must be text or json", format)
	}
	return slog.New(redact.Handler(h)), nil
}

// RedisLogger adapts l to go-redis's logger interface (redis.SetLogger): go-redis's own lines (a pool
// that failed to reconnect, a cluster slot refresh that failed) become warnings with component=redis.
func RedisLogger(l *slog.Logger) interface {
	Printf(ctx context.Context, format string, v ...any)
} {
	return redisLogger{l.With("component", "redis")}
}

type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// Error logs err at level error with msg and args. A config error (*config.Error) is written as one line
// per problem, each with its field (JSON pointer) and what is wrong, so that log collectors and people
// see each problem whole.
func Error(l *slog.Logger, msg string, err error, args ...any) {
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) == 0 {
		l.Error(msg, append(args, "err", err)...)
		return
	}
	for i, p := range ce.Problems {
		field := p.Pointer
		if field == "" {
			field = "(document)"
		}
		l.Error(msg, append(args, "problem", fmt.Sprintf("%d/%d", i+1, len(ce.Problems)), "field", field, "detail", p.Detail)...)
	}
}

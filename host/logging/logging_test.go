package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/logging"
)

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		format, level string
		wantErr       string
		debug, json   bool
	}{
		{format: "", level: ""},
		{format: "text", level: "debug", debug: true},
		{format: "json", level: "info", json: true},
		{format: "JSON", level: "WARN", json: true},
		{format: "xml", wantErr: `format "xml": must be text or json`},
		{level: "loud", wantErr: `level "loud": must be debug, info, warn or error`},
	} {
		t.Run(tt.format+"/"+tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := logging.New(&buf, tt.format, tt.level)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.Debug("dbg")
			l.Warn("calling", "url", "https://shop.example/wp-json?consumer_secret=cs_123")
			out := buf.String()
			if strings.Contains(out, "dbg") != tt.debug {
				t.Errorf("debug line written: %v, want %v:\n%s", !tt.debug, tt.debug, out)
			}
			if strings.Contains(out, "cs_123") {
				t.Errorf("credential not redacted:\n%s", out)
			}
			if tt.json {
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					if !json.Valid([]byte(line)) {
						t.Errorf("not JSON: %s", line)
					}
				}
			} else if !strings.Contains(out, "level=WARN msg=calling") {
				t.Errorf("not text:\n%s", out)
			}
		})
	}
}

func TestErrorOneLinePerProblem(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		lines []string
	}{
		{name: "plain", err: errors.New("boom"), lines: []string{`level=ERROR msg=failed path=f err=boom`}},
		{name: "problems", err: fmt.Errorf("config: f: %w", &config.Error{Problems: []config.Problem{
			{Pointer: "/plugins/callTimeout", Detail: "must be a duration such as 100ms"},
			{Pointer: "", Detail: "must be an object"},
		}}), lines: []string{
			`level=ERROR msg=failed path=f problem=1/2 field=/plugins/callTimeout detail="must be a duration such as 100ms"`,
			`level=ERROR msg=failed path=f problem=2/2 field=(document) detail="must be an object"`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, _ := logging.New(&buf, "text", "info")
			logging.Error(l, "failed", tt.err, "path", "f")
			got := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(got) != len(tt.lines) {
				t.Fatalf("%d lines, want %d:\n%s", len(got), len(tt.lines), &buf)
			}
			for i, want := range tt.lines {
				if !strings.HasSuffix(got[i], want) {
					t.Errorf("line %d:\n got %s\nwant …%s", i, got[i], want)
				}
			}
		})
	}
}

func TestRedisLogger(t *testing.T) {
	var buf bytes.Buffer
	l, _ := logging.New(&buf, "json", "info")
	logging.RedisLogger(l).Printf(context.Background(), "redis: %s failed: %v\n", "dial", "refused")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["level"] != "WARN" || line["component"] != "redis" || line["msg"] != "redis: dial failed: refused" {
		t.Errorf("line: %v", line)
	}
}

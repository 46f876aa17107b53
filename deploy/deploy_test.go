// Package deploy holds kasse's deployment files (Dockerfile, compose.yaml, the systemd unit, the
// container's example config) and the tests that keep them honest where they cannot run here (no Docker,
// no systemd, no network): every file the Dockerfile copies exists and is not excluded from the build
// context, the repository paths its build steps name exist, compose.yaml parses and points at files that
// exist, the unit has what systemd needs, and the example config passes kasse's own check.
package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/schemas"
)

// root is the repository root, the Dockerfile's build context.
const root = ".."

// instruction is one Dockerfile instruction with its continuation lines joined; heredoc bodies are
// kept apart.
type instruction struct {
	line    int
	keyword string
	args    []string
	heredoc string
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	sc := bufio.NewScanner(f)
	n := 0
	var cur strings.Builder
	start := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if cur.Len() == 0 {
			if s := strings.TrimSpace(line); s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		fields := strings.Fields(cur.String())
		cur.Reset()
		in := instruction{line: start, keyword: strings.ToUpper(fields[0]), args: fields[1:]}
		if last := fields[len(fields)-1]; strings.HasPrefix(last, "<<") {
			end := strings.Trim(strings.TrimPrefix(last, "<<"), `'"-`)
			var body strings.Builder
			for sc.Scan() {
				n++
				if sc.Text() == end {
					break
				}
				body.WriteString(sc.Text() + "\n")
			}
			in.heredoc = body.String()
		}
		out = append(out, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// ignored reports whether a context path is excluded by the .dockerignore patterns (the simple forms
// used in Dockerfile.dockerignore: a path, a directory, or **/*.ext).
func ignored(path string, patterns []string) bool {
	path = strings.TrimSuffix(filepath.ToSlash(filepath.Clean(path)), "/")
	for _, p := range patterns {
		if ext, ok := strings.CutPrefix(p, "**/*"); ok {
			if strings.HasSuffix(path, ext) {
				return true
			}
			continue
		}
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

func readIgnore(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func TestDockerfileCopiesExist(t *testing.T) {
	ignore := readIgnore(t)
	var copies, stages int
	for _, in := range parseDockerfile(t, "Dockerfile") {
		switch in.keyword {
		case "FROM":
			stages++
		case "COPY", "ADD":
			args := slices.DeleteFunc(slices.Clone(in.args), func(a string) bool { return strings.HasPrefix(a, "--") })
			if slices.ContainsFunc(in.args, func(a string) bool { return strings.HasPrefix(a, "--from=") }) {
				continue // from another stage, not from the context
			}
			if len(args) < 2 {
				t.Errorf("line %d: %s needs a source and a destination", in.line, in.keyword)
				continue
			}
			for _, src := range args[:len(args)-1] {
				copies++
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("line %d: %s %s: %v", in.line, in.keyword, src, err)
				}
				if ignored(src, ignore) {
					t.Errorf("line %d: %s %s: excluded by Dockerfile.dockerignore", in.line, in.keyword, src)
				}
			}
		case "RUN":
			// Repository paths the build steps name must exist and be in the context.
			for _, tok := range strings.FieldsFunc(strings.Join(in.args, " ")+" "+in.heredoc, func(r rune) bool {
				return r == ' ' || r == '\n' || r == '"' || r == '\''
			}) {
				tok = strings.TrimPrefix(tok, "./")
				if !strings.HasPrefix(tok, "plugin/") && !strings.HasPrefix(tok, "host/") {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, tok)); err != nil {
					t.Errorf("line %d: RUN names %s: %v", in.line, tok, err)
				}
				if ignored(tok, ignore) {
					t.Errorf("line %d: RUN names %s, excluded by Dockerfile.dockerignore", in.line, tok)
				}
			}
		}
	}
	if copies < 5 || stages < 2 {
		t.Errorf("%d COPY sources in %d stages: the parser missed them", copies, stages)
	}
}

func TestDockerfileKeepsSecretsOutOfLayers(t *testing.T) {
	var signed, user bool
	for _, in := range parseDockerfile(t, "Dockerfile") {
		all := strings.Join(in.args, " ") + in.heredoc
		switch in.keyword {
		case "ARG", "ENV":
			if s := strings.ToLower(all); strings.Contains(s, "key") || strings.Contains(s, "secret") {
				t.Errorf("line %d: %s %s: a secret in a build argument or the environment stays in the image", in.line, in.keyword, all)
			}
		case "RUN":
			if strings.Contains(all, "plugin sign") {
				signed = true
				if !strings.Contains(all, "--mount=type=secret,id=plugin_signing_key") {
					t.Errorf("line %d: signing without the key as a build secret", in.line)
				}
			}
		case "USER":
			user = len(in.args) == 1 && !strings.HasPrefix(in.args[0], "root") && !strings.HasPrefix(in.args[0], "0")
		}
	}
	if !signed || !user {
		t.Errorf("plugins signed in the build: %v; runs as a non-root user: %v", signed, user)
	}
}

func TestComposeParses(t *testing.T) {
	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Build *struct {
				Context    string   `yaml:"context"`
				Dockerfile string   `yaml:"dockerfile"`
				Secrets    []string `yaml:"secrets"`
			} `yaml:"build"`
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
		Secrets map[string]map[string]string `yaml:"secrets"`
		Volumes map[string]any               `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	kasse, ok := doc.Services["kasse"]
	if !ok || kasse.Build == nil {
		t.Fatalf("no kasse service with a build: %+v", doc.Services)
	}
	if _, err := os.Stat(filepath.Join(kasse.Build.Context, kasse.Build.Dockerfile)); err != nil {
		t.Errorf("kasse build: %v", err)
	}
	for _, s := range kasse.Build.Secrets {
		if _, ok := doc.Secrets[s]; !ok {
			t.Errorf("build secret %s is not declared", s)
		}
	}
	if redis, ok := doc.Services["redis"]; !ok || !strings.HasPrefix(redis.Image, "redis:") {
		t.Errorf("no redis service: %+v", doc.Services)
	}
	if !strings.HasPrefix(kasse.Environment["KASSE_REDIS_URL"], "redis://redis:") {
		t.Errorf("kasse does not use the redis service: %v", kasse.Environment)
	}
	for _, v := range kasse.Volumes {
		src, _, _ := strings.Cut(v, ":")
		if strings.HasPrefix(src, ".") {
			if _, err := os.Stat(src); err != nil {
				t.Errorf("volume %s: %v", v, err)
			}
		} else if _, ok := doc.Volumes[src]; !ok {
			t.Errorf("volume %s is not declared", src)
		}
	}
	for _, p := range kasse.Ports {
		if strings.HasSuffix(p, ":9090") && !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("the operations port is published beyond loopback: %s", p)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile("kasse.service")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]map[string]string{}
	var cur string
	for i, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			cur = l[1 : len(l)-1]
			sections[cur] = map[string]string{}
		case cur == "":
			t.Fatalf("line %d outside a section: %s", i+1, l)
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("line %d is not key=value: %s", i+1, l)
			}
			sections[cur][k] = v
		}
	}
	for _, want := range []struct{ section, key, prefix string }{
		{"Unit", "Description", ""},
		{"Service", "ExecStart", "/usr/local/bin/kasse serve -config /etc/kasse/kasse.yaml"},
		{"Service", "KillSignal", "SIGTERM"},
		{"Service", "DynamicUser", "yes"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if v, ok := sections[want.section][want.key]; !ok || !strings.HasPrefix(v, want.prefix) {
			t.Errorf("[%s] %s = %q, want it starting with %q", want.section, want.key, v, want.prefix)
		}
	}
	if _, ok := sections["Service"]["MemoryDenyWriteExecute"]; ok {
		t.Error("MemoryDenyWriteExecute breaks wazero's compiler")
	}
}

// TestContainerConfigChecks: the image's example config passes the config check (schema and invariants),
// with every secret it names set.
func TestContainerConfigChecks(t *testing.T) {
	set, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load("kasse.yaml", set, func(name string) string {
		if name == config.EnvRedisURL {
			return ""
		}
		return "placeholder-secret-of-32-characters-or-more"
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Plugins.Dir != "/var/lib/kasse/plugins" || c.Log.Format != config.LogJSON || c.Store.Redis == nil {
		t.Errorf("plugins.dir %q, log %+v, redis %v", c.Plugins.Dir, c.Log, c.Store.Redis)
	}
}

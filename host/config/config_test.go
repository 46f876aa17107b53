package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// testEnv is the environment every test config is loaded with. Its values stand for secrets: no error
// may contain any of them.
var testEnv = map[string]string{
	"KASSE_DEMO_CLIENT_SECRET":      "demo-client-secret",
	"KASSE_DEMO_SUBSCRIPTION_KEY":   "demo-subscription-key",
	"KASSE_DEMO_API_KEY":            "demo-api-key",
	"KASSE_NEWLINE_SECRET":          "secret-read-from-a-file\n",
	"KASSE_DEMO_WEBHOOK_SECRET":     "demo-webhook-secret",
	"KASSE_DEMO_OLD_WEBHOOK_SECRET": "demo-old-webhook-secret",
	"KASSE_DEMO_CONSUMER_KEY":       "ck_demo-consumer-key",
	"KASSE_DEMO_CONSUMER_SECRET":    "cs_demo-consumer-secret",
	"KASSE_DEMO_ACCESS_TOKEN":       "shpat_demo-access-token",
	"KASSE_REDIS_USERNAME":          "kasse-redis-user",
	"KASSE_REDIS_PASSWORD":          "redis-password",
	"KASSE_REDIS_SENTINEL_PASSWORD": "sentinel-password",
	"KASSE_DEMO_URL_SECRET":         "demo-url-secret-of-at-least-32-characters",
	"KASSE_SHORT_URL_SECRET":        "too-short",
}

// secretsInTestdata are values in the invalid test files that stand for secrets or passwords.
var secretsInTestdata = []string{"hunter2", "Y8Kteew6GE2ZmeycEt6egg=="}

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func compile(t *testing.T) *schemas.Set {
	t.Helper()
	set, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// golden compares got with the file at path, or rewrites the file with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func cases(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test configs in testdata/%s: %v", dir, err)
	}
	return files
}

// TestValid loads each testdata/valid/*.yaml and compares the result, defaults applied, with its .json.
func TestValid(t *testing.T) {
	set := compile(t)
	userCache, cacheErr := os.UserCacheDir()
	for _, file := range cases(t, "valid") {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			c, err := config.Load(file, set, getenv(testEnv))
			if err != nil {
				t.Fatal(err)
			}
			for id, m := range c.Merchants {
				if m.ID != id {
					t.Errorf("merchant %q has ID %q", id, m.ID)
				}
				if m.Vipps.ClientSecret.Reveal() != testEnv[m.Vipps.ClientSecretEnv] ||
					m.Vipps.SubscriptionKey.Reveal() != testEnv[m.Vipps.SubscriptionKeyEnv] ||
					m.APIKey.Reveal() != testEnv[m.APIKeyEnv] {
					t.Errorf("merchant %q: secrets not resolved from the environment", id)
				}
			}
			if cacheErr == nil && c.Plugins.CacheDir == filepath.Join(userCache, "kasse", "wazero") {
				c.Plugins.CacheDir = "<user cache dir>/kasse/wazero"
			}
			var got bytes.Buffer
			enc := json.NewEncoder(&got)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(c); err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".json", got.Bytes())
		})
	}
}

// TestInvalid loads each testdata/invalid/*.yaml and compares the error with its .golden file.
func TestInvalid(t *testing.T) {
	set := compile(t)
	for _, file := range cases(t, "invalid") {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := config.Parse(data, set, getenv(testEnv))
			if err == nil {
				t.Fatalf("loaded: %+v", c)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: ") {
				t.Errorf("error does not start with the package prefix: %s", msg)
			}
			assertNoSecret(t, msg)
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden", []byte(msg+"\n"))
		})
	}
}

func assertNoSecret(t *testing.T, msg string) {
	t.Helper()
	for _, v := range testEnv {
		if strings.Contains(msg, strings.TrimSpace(v)) {
			t.Errorf("error shows the secret %q: %s", v, msg)
		}
	}
	for _, v := range secretsInTestdata {
		if strings.Contains(msg, v) {
			t.Errorf("error shows %q: %s", v, msg)
		}
	}
}

func TestProblemsAreTyped(t *testing.T) {
	set := compile(t)
	data, err := os.ReadFile("testdata/invalid/missing_env.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Parse(data, set, getenv(testEnv))
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error is %T, want *config.Error: %v", err, err)
	}
	want := []config.Problem{
		{Pointer: "/merchants/demo/apiKeyEnv", Detail: "merchant demo: API key: environment variable KASSE_UNSET_API_KEY is not set"},
		{Pointer: "/merchants/demo/vipps/clientSecretEnv", Detail: "merchant demo: client secret: environment variable KASSE_UNSET_CLIENT_SECRET is not set"},
		{Pointer: "/merchants/other/vipps/subscriptionKeyEnv", Detail: "merchant other: subscription key: environment variable KASSE_UNSET_SUBSCRIPTION_KEY is not set"},
	}
	if !reflect.DeepEqual(ce.Problems, want) {
		t.Errorf("problems:\n got %q\nwant %q", ce.Problems, want)
	}

	data, err = os.ReadFile("testdata/invalid/msn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Parse(data, set, getenv(testEnv))
	var ve *schemas.ValidationError
	if !errors.As(err, &ce) || !errors.As(err, &ve) {
		t.Fatalf("schema failure is not a *config.Error wrapping *schemas.ValidationError: %T %v", err, err)
	}
	var ptrs []string
	for _, p := range ce.Problems {
		ptrs = append(ptrs, p.Pointer)
	}
	if !slices.Contains(ptrs, "/merchants/demo/vipps/merchantSerialNumber") ||
		!slices.Contains(ptrs, "/merchants/other/vipps/merchantSerialNumber") {
		t.Errorf("problems do not point at both MSNs: %q", ptrs)
	}
}

// TestMissingSecretNeverShowsValues loads a config in which one secret is set and another is not: the
// error names the merchant, the field and the variable, and shows no value.
func TestMissingSecretNeverShowsValues(t *testing.T) {
	set := compile(t)
	const secret = "s3cr3t-value-that-must-not-leak"
	yaml := `
merchants:
  acme:
    plugin: vipps-ecom
    returnUrlPrefixes: ["https://acme.example/"]
    apiKeyEnv: ACME_API_KEY
    vipps:
      baseUrl: https://api.vipps.no
      merchantSerialNumber: "99999"
      clientId: acme
      clientSecretEnv: ACME_CLIENT_SECRET
      subscriptionKeyEnv: ACME_SUBSCRIPTION_KEY
`
	env := map[string]string{"ACME_CLIENT_SECRET": secret, "ACME_API_KEY": secret + "-api"}
	_, err := config.Parse([]byte(yaml), set, getenv(env))
	if err == nil {
		t.Fatal("loaded without a subscription key")
	}
	msg := err.Error()
	for _, want := range []string{"acme", "subscriptionKeyEnv", "ACME_SUBSCRIPTION_KEY"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, secret) {
		t.Errorf("error shows a secret: %s", msg)
	}
}

func TestExampleLoads(t *testing.T) {
	set := compile(t)
	env := map[string]string{
		"KASSE_DEMO_CLIENT_SECRET":    "demo-client-secret",
		"KASSE_DEMO_SUBSCRIPTION_KEY": "demo-subscription-key",
		"KASSE_DEMO_API_KEY":          "demo-api-key",
		"KASSE_DEMO_ADMIN_TOKEN":      "demo-admin-token-not-secret",
		"KASSE_DEMO_URL_SECRET":       "demo-url-secret-for-local-runs-only",
	}
	c, err := config.Load("../../examples/kasse.yaml", set, getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := c.Merchant("demo")
	if !ok {
		t.Fatal("no demo merchant")
	}
	if _, ok := c.Merchant("nobody"); ok {
		t.Error("Merchant found an unknown id")
	}
	got := []string{m.ID, m.Plugin, m.Vipps.BaseURL, m.Vipps.MerchantSerialNumber, m.Vipps.ClientID,
		m.Vipps.ClientSecret.Reveal(), m.Vipps.SubscriptionKey.Reveal(), m.APIKey.Reveal(),
		c.Server.Listen, c.Server.PublicURL, c.Plugins.Dir}
	want := []string{"demo", "vipps-ecom", "http://127.0.0.1:8090", "123456", "demo-client-id",
		"demo-client-secret", "demo-subscription-key", "demo-api-key",
		"127.0.0.1:8080", "http://127.0.0.1:8080", "../../plugin/build"}
	if !slices.Equal(got, want) {
		t.Errorf("demo merchant:\n got %q\nwant %q", got, want)
	}
	if time.Duration(c.Plugins.CallTimeout) != 100*time.Millisecond ||
		time.Duration(c.Reconciler.PendingTimeout) != 10*time.Minute ||
		time.Duration(c.Store.SessionTTL) != 9600*time.Hour {
		t.Errorf("durations: %+v %+v %+v", c.Plugins, c.Reconciler, c.Store)
	}

	// Without the demo environment the example names the variables to set.
	_, err = config.Load("../../examples/kasse.yaml", set, getenv(nil))
	if err == nil || !strings.Contains(err.Error(), "KASSE_DEMO_CLIENT_SECRET") ||
		!strings.HasPrefix(err.Error(), "config: ../../examples/kasse.yaml: ") {
		t.Errorf("error without the environment: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"), compile(t), getenv(testEnv))
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: open ") {
		t.Errorf("got %v", err)
	}
}

func TestRedisURLFromEnvironment(t *testing.T) {
	set := compile(t)
	data, err := os.ReadFile("testdata/valid/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{config.EnvRedisURL: "redis://:pa55word@redis.internal:6379/3"}
	for k, v := range testEnv {
		env[k] = v
	}
	c, err := config.Parse(data, set, getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.RedisURL != env[config.EnvRedisURL] {
		t.Errorf("redisUrl %q, want the environment's", c.Store.RedisURL)
	}

	env[config.EnvRedisURL] = "http://:pa55word@redis.internal/"
	_, err = config.Parse(data, set, getenv(env))
	want := "config: /store/redisUrl: environment variable KASSE_REDIS_URL must be a redis://host:port/db, rediss:// or unix:// URL"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestParseNeedsSchemas(t *testing.T) {
	if _, err := config.Parse([]byte("merchants: {}"), nil, nil); err == nil {
		t.Error("parsed without a schema set")
	}
}

// TestSecretNeverPrints formats secrets, alone and inside the config types, every way a log line or
// an error message might.
func TestSecretNeverPrints(t *testing.T) {
	const value = "do-not-print-me"
	s := config.Secret(value)
	if s.Reveal() != value {
		t.Fatalf("Reveal() = %q", s.Reveal())
	}
	v := config.Vipps{ClientID: "id", ClientSecret: s, SubscriptionKey: s}
	m := config.Merchant{ID: "demo", APIKey: s, Vipps: v}
	c := &config.Config{Merchants: map[string]config.Merchant{"demo": m}}
	type exposed struct {
		S config.Secret `json:"s"`
		P *config.Secret
	}
	values := []any{s, &s, v, &v, m, c, []config.Secret{s}, map[string]config.Secret{"k": s}, exposed{s, &s}}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T %v"}
	for _, val := range values {
		for _, verb := range verbs {
			if out := fmt.Sprintf(verb, val); strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
				t.Errorf("fmt %s of %T shows the secret: %s", verb, val, out)
			}
		}
		b, err := json.Marshal(val)
		if err != nil {
			t.Fatalf("json of %T: %v", val, err)
		}
		if strings.Contains(string(b), value) {
			t.Errorf("json of %T shows the secret: %s", val, b)
		}
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", val)
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", val)
		if strings.Contains(buf.String(), value) {
			t.Errorf("slog of %T shows the secret: %s", val, buf.String())
		}
	}
	if got := s.String(); got != "[redacted]" {
		t.Errorf("String() = %q", got)
	}
	if b, _ := json.Marshal(s); string(b) != `"[redacted]"` {
		t.Errorf("MarshalJSON = %s", b)
	}
	if got := fmt.Sprintf("%v|%+v|%#v", s, s, s); got != "[redacted]|[redacted]|[redacted]" {
		t.Errorf("fmt = %q", got)
	}
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: `"100ms"`, want: 100 * time.Millisecond},
		{in: `"1h30m"`, want: 90 * time.Minute},
		{in: `"9600h"`, want: 9600 * time.Hour},
		{in: `100`, wantErr: `duration must be a string such as "2s", got 100`},
		{in: `"2 seconds"`, wantErr: `invalid duration "2 seconds": time: unknown unit " seconds" in duration "2 seconds"`},
	}
	for _, tt := range tests {
		var d config.Duration
		err := json.Unmarshal([]byte(tt.in), &d)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%s: got error %v, want %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || time.Duration(d) != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.in, time.Duration(d), err, tt.want)
			continue
		}
		b, err := json.Marshal(d)
		if err != nil || string(b) != `"`+tt.want.String()+`"` {
			t.Errorf("%s: marshals to %s, %v", tt.in, b, err)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.9.9.9": true, "::1": true,
		"api.vipps.no": false, "10.0.0.1": false, "localhost.evil.test": false, "": false, "0.0.0.0": false,
	} {
		if got := config.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestSchemaDocumentsEveryField checks the schema file itself: a description on every property, no
// object without additionalProperties, and the same field names as the Go types' json tags.
func TestSchemaDocumentsEveryField(t *testing.T) {
	raw, err := os.ReadFile("../../schemas/config.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" ||
		doc["$id"] != "https://kasse.dev/schemas/"+schemas.Config {
		t.Errorf("$schema %v, $id %v", doc["$schema"], doc["$id"])
	}
	defs, _ := doc["$defs"].(map[string]any)
	var walk func(ptr string, node map[string]any)
	walk = func(ptr string, node map[string]any) {
		if node["type"] == "object" && node["additionalProperties"] == nil {
			t.Errorf("%s: object without additionalProperties", ptr)
		}
		props, _ := node["properties"].(map[string]any)
		for name, p := range props {
			prop, _ := p.(map[string]any)
			if d, _ := prop["description"].(string); strings.TrimSpace(d) == "" {
				t.Errorf("%s/properties/%s: no description", ptr, name)
			}
			walk(ptr+"/properties/"+name, prop)
		}
		for _, key := range []string{"additionalProperties", "items"} {
			if sub, ok := node[key].(map[string]any); ok {
				walk(ptr+"/"+key, sub)
			}
		}
	}
	walk("#", doc)
	for name, d := range defs {
		walk("#/$defs/"+name, d.(map[string]any))
	}

	// resolve follows a local $ref.
	resolve := func(node map[string]any) map[string]any {
		if ref, ok := node["$ref"].(string); ok {
			return defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		}
		return node
	}
	var compare func(path string, typ reflect.Type, node map[string]any)
	compare = func(path string, typ reflect.Type, node map[string]any) {
		node = resolve(node)
		switch typ.Kind() {
		case reflect.Struct:
			props, _ := node["properties"].(map[string]any)
			var fields []string
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name == "-" || name == "" {
					continue
				}
				fields = append(fields, name)
				sub, ok := props[name].(map[string]any)
				if !ok {
					t.Errorf("%s.%s: in the Go type, not in the schema", path, name)
					continue
				}
				compare(path+"."+name, f.Type, sub)
			}
			for name := range props {
				if !slices.Contains(fields, name) {
					t.Errorf("%s.%s: in the schema, not in the Go type", path, name)
				}
			}
		case reflect.Map:
			sub, _ := node["additionalProperties"].(map[string]any)
			compare(path+".*", typ.Elem(), sub)
		}
	}
	compare("config", reflect.TypeFor[config.Config](), doc)
}

// TestPlatformSecretsResolved checks that every platform secret is read from the variable its *Env field
// names, and that optional ones stay empty when not named.
func TestPlatformSecretsResolved(t *testing.T) {
	c, err := config.Load("testdata/valid/platforms.yaml", compile(t), getenv(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	for id, m := range c.Merchants {
		p := m.Platform
		if p == nil {
			t.Fatalf("merchant %s has no platform", id)
		}
		for _, s := range []struct {
			env string
			got config.Secret
		}{
			{p.WebhookSecretEnv, p.WebhookSecret}, {p.PreviousWebhookSecretEnv, p.PreviousWebhookSecret},
			{p.ConsumerKeyEnv, p.ConsumerKey}, {p.ConsumerSecretEnv, p.ConsumerSecret},
			{p.AccessTokenEnv, p.AccessToken},
		} {
			if s.got.Reveal() != testEnv[s.env] {
				t.Errorf("merchant %s: secret of %q not resolved", id, s.env)
			}
		}
	}
	if got := c.Merchants["woo"].Platform.BaseURL; got != "https://woo.example" {
		t.Errorf("woo baseUrl %q", got)
	}
	if got := c.Merchants["custom"].Platform.Options["storeId"]; got != "42" {
		t.Errorf("custom options %q", got)
	}
}

// TestRedisClients checks that each store.redis form becomes the go-redis client it names, with the
// credentials from the environment and the pool and timeouts from the file.
func TestRedisClients(t *testing.T) {
	set := compile(t)
	tests := []struct {
		file     string
		wantType string
	}{
		{"redis_single", "*redis.Client"},
		{"redis_cluster", "*redis.ClusterClient"},
		{"redis_cluster_url", "*redis.ClusterClient"},
		{"redis_sentinel", "*redis.Client"}, // go-redis's failover client is a *redis.Client
		{"full", "*redis.Client"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := config.Load(filepath.Join("testdata", "valid", tt.file+".yaml"), set, getenv(testEnv))
			if err != nil {
				t.Fatal(err)
			}
			client, err := c.Store.Redis.NewClient()
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			if got := fmt.Sprintf("%T", client); got != tt.wantType {
				t.Errorf("client %s, want %s", got, tt.wantType)
			}
			// The store bounds every command by its context; the client must honour the deadline.
			switch c := client.(type) {
			case *redis.Client:
				if !c.Options().ContextTimeoutEnabled {
					t.Error("ContextTimeoutEnabled off")
				}
			case *redis.ClusterClient:
				if !c.Options().ContextTimeoutEnabled {
					t.Error("ContextTimeoutEnabled off")
				}
			}
			if strings.Contains(c.Store.Redis.Description(), "redis-password") {
				t.Errorf("description shows the password: %s", c.Store.Redis.Description())
			}
		})
	}
	c, err := config.Load(filepath.Join("testdata", "valid", "redis_cluster.yaml"), set, getenv(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Store.Redis.UniversalOptions()
	if !o.IsClusterMode || o.Username != "kasse-redis-user" || o.Password != "redis-password" ||
		o.PoolSize != 20 || o.ReadTimeout != 500*time.Millisecond || o.TLSConfig == nil || len(o.Addrs) != 3 ||
		!o.ContextTimeoutEnabled {
		t.Errorf("cluster options %+v", o)
	}
}

// TestRedisURLEnvironmentOverridesStoreRedis: KASSE_REDIS_URL replaces store.redis's url or addrs and
// keeps the rest (credentials, timeouts).
func TestRedisURLEnvironmentOverridesStoreRedis(t *testing.T) {
	set := compile(t)
	env := maps.Clone(testEnv)
	env[config.EnvRedisURL] = "redis://127.0.0.1:7000?addr=127.0.0.1:7001"
	c, err := config.Load(filepath.Join("testdata", "valid", "redis_cluster.yaml"), set, getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Store.Redis
	if r.URL != env[config.EnvRedisURL] || len(r.Addrs) != 0 || r.Mode != config.RedisCluster || r.TLS ||
		r.Password.Reveal() != "redis-password" {
		t.Errorf("store.redis %+v", r)
	}
}

// TestYAML12 reads YAML scalars the way YAML 1.2 does, and refuses what would be silently lost.
func TestYAML12(t *testing.T) {
	const merchant = `merchants:
  demo:
    plugin: vipps-ecom
    apiKeyEnv: KASSE_DEMO_API_KEY
    returnUrlPrefixes: ["https://shop.example/"]
    transactionTextPrefix: %s
    vipps:
      baseUrl: https://apitest.vipps.no
      merchantSerialNumber: "123456"
      clientId: demo-client-id
      clientSecretEnv: KASSE_DEMO_CLIENT_SECRET
      subscriptionKeyEnv: KASSE_DEMO_SUBSCRIPTION_KEY
`
	for _, tt := range []struct {
		name, prefix, extra string
		want                string // the merchant's transactionTextPrefix
		wantErr             string
	}{
		{name: "NO stays a string", prefix: "NO", want: "NO"},
		{name: "yes stays a string", prefix: "yes", want: "yes"},
		{name: "off stays a string", prefix: "off", want: "off"},
		{name: "a date stays a string", prefix: "2026-12-03", want: "2026-12-03"},
		{name: "html characters kept", prefix: "'<Ørn & co>'", want: "<Ørn & co>"},
		{name: "true is a boolean", prefix: "true", wantErr: "/merchants/demo/transactionTextPrefix: must be a string but found true"},
		{name: "a number is not a string", prefix: "123", wantErr: "/merchants/demo/transactionTextPrefix: must be a string but found 123"},
		{name: "duplicate key", prefix: "a\n    transactionTextPrefix: b", wantErr: `parse yaml: line 7, column 5: mapping key "transactionTextPrefix" already defined at [6:5]`},
		{name: "second document", prefix: "a", extra: "---\nserver: {listen: \"0.0.0.0:1\"}\n", wantErr: "the file holds 2 YAML documents"},
		{name: "tab indentation", prefix: "a", extra: "server:\n\tlisten: x\n", wantErr: "parse yaml: line 14, column 1: found character"},
		{name: "duration as a number", prefix: "a", extra: "plugins:\n  callTimeout: 100\n", wantErr: "/plugins/callTimeout: must be a duration such as 100ms, 2s or 10m (a number needs a unit)"},
		{name: "misspelt field", prefix: "a", extra: "plugins:\n  callTimout: 100ms\n", wantErr: "/plugins/callTimout: unknown field; did you mean callTimeout?"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := fmt.Sprintf(merchant, tt.prefix) + tt.extra
			c, err := config.Parse([]byte(doc), compile(t), getenv(testEnv))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Merchants["demo"].TransactionTextPrefix; got != tt.want {
				t.Errorf("transactionTextPrefix %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRedisURLEnvironmentWithSettingsOnly: a file whose store.redis gives only settings (no url, no addrs)
// takes the mode from KASSE_REDIS_URL, as the chaos suite's and a container's configs do.
func TestRedisURLEnvironmentWithSettingsOnly(t *testing.T) {
	set := compile(t)
	raw, err := os.ReadFile(filepath.Join("testdata", "valid", "redis_cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), `    addrs: ["10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"]`, "    waitReplicas: 1\n    waitTimeout: 100ms\n    separateReads: true", 1)
	path := filepath.Join(t.TempDir(), "kasse.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, mode string }{
		{"redis://127.0.0.1:7000?addr=127.0.0.1:7001", config.RedisCluster},
		{"redis://127.0.0.1:6379/0", config.RedisSingle},
	} {
		env := maps.Clone(testEnv)
		env[config.EnvRedisURL] = tc.url
		c, err := config.Load(path, set, getenv(env))
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if r := c.Store.Redis; r.Mode != tc.mode || r.WaitReplicas != 1 || time.Duration(r.WaitTimeout) != 100*time.Millisecond || !r.SeparateReads {
			t.Errorf("%s: store.redis %+v", tc.url, r)
		}
	}
}

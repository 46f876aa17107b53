package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis modes: how kasse reaches Redis (Redis.Mode).
const (
	// RedisSingle is one Redis server (url redis://, rediss:// or unix://, or one address).
	RedisSingle = "single"
	// RedisCluster is a Redis Cluster, reached through seed addresses or go-redis's cluster URL form.
	RedisCluster = "cluster"
	// RedisSentinel is a primary managed by Redis Sentinel, found by master name through the sentinels.
	RedisSentinel = "sentinel"
)

// Redis says how kasse reaches Redis: one server, a cluster, or a Sentinel-managed primary. Give either
// URL or Addrs. Load fills it from store.redisUrl or KASSE_REDIS_URL too, so after Load a configured Redis
// is always here. NewClient turns it into a go-redis client.
type Redis struct {
	// Mode is "single", "cluster" or "sentinel". Default: "sentinel" when MasterName is set, else
	// "cluster" when Addrs is given or URL has addr= parameters (the cluster URL form), else "single".
	Mode string `json:"mode,omitempty"`
	// URL is, in single mode, redis://[user[:password]@]host:port/db, rediss:// for TLS, or unix://path;
	// in cluster mode go-redis's cluster URL form, redis://host1:port?addr=host2:port&addr=host3:port
	// (rediss:// for TLS). KASSE_REDIS_URL overrides it. A password in the URL works, but PasswordEnv
	// keeps it out of the file.
	URL string `json:"url,omitempty"`
	// Addrs are host:port addresses: the cluster's seed nodes (any subset; the rest are discovered), or
	// in sentinel mode the sentinels'.
	Addrs []string `json:"addrs,omitempty"`
	// MasterName is the Sentinel master name (sentinel mode only).
	MasterName string `json:"masterName,omitempty"`
	// DB is the database number with Addrs in single or sentinel mode (a cluster has only 0). Default 0.
	DB int `json:"db,omitempty"`
	// TLS turns TLS on for Addrs (with URL, the rediss:// scheme does). Default false.
	TLS bool `json:"tls,omitempty"`
	// UsernameEnv names the environment variable holding the Redis ACL user name. Optional.
	UsernameEnv string `json:"usernameEnv,omitempty"`
	// PasswordEnv names the environment variable holding the Redis password. Optional.
	PasswordEnv string `json:"passwordEnv,omitempty"`
	// SentinelPasswordEnv names the environment variable holding the sentinels' own password
	// (sentinel mode). Optional.
	SentinelPasswordEnv string `json:"sentinelPasswordEnv,omitempty"`
	// PoolSize is the number of connections per node. Default 0: go-redis's 10 per CPU.
	PoolSize int `json:"poolSize,omitempty"`
	// DialTimeout, ReadTimeout and WriteTimeout bound connecting and each command's socket reads and
	// writes. Default 0: go-redis's 5s, 3s and 3s.
	DialTimeout  Duration `json:"dialTimeout,omitempty"`
	ReadTimeout  Duration `json:"readTimeout,omitempty"`
	WriteTimeout Duration `json:"writeTimeout,omitempty"`
	// WaitReplicas makes each session write wait until that many replicas of its primary have it (Redis
	// WAIT), at most WaitTimeout, so that a failover cannot lose a write kasse already acted on. A write
	// too few replicas have in time is not acted on: the request answers 503 and the reconciler settles
	// whatever the write started. Set it on a replicated cluster or a Sentinel setup to at most the
	// replicas per primary minus the ones you accept being down (with one replica per primary, 1 stops
	// writes to that primary while its replica is down). Default 0: off (see store.RedisOptions).
	WaitReplicas int `json:"waitReplicas,omitempty"`
	// WaitTimeout bounds each such wait. Default 0: 500ms.
	WaitTimeout Duration `json:"waitTimeout,omitempty"`
	// SeparateReads turns off pipelined reads: by default the session reads of concurrent requests (a
	// GET, a callback's lookup) go to Redis together through go-redis's automatic pipeliner, one write
	// and one read of the socket for many, which costs Redis and kasse a third less CPU per read. Writes
	// never go through it. Set it to send every read on its own, as before. Default false.
	SeparateReads bool `json:"separateReads,omitempty"`

	// Username, Password and SentinelPassword are the values of the *Env variables; Load sets them.
	Username         Secret `json:"-"`
	Password         Secret `json:"-"`
	SentinelPassword Secret `json:"-"`
}

// override applies the settings r gives over what a URL said, for the option types of one server and of
// a cluster alike.
func (r *Redis) override(pool *int, dial, read, write *time.Duration, user, pass *string) {
	if r.PoolSize > 0 {
		*pool = r.PoolSize
	}
	*dial = orDefault(r.DialTimeout, *dial)
	*read = orDefault(r.ReadTimeout, *read)
	*write = orDefault(r.WriteTimeout, *write)
	if r.Username != "" {
		*user = r.Username.Reveal()
	}
	if r.Password != "" {
		*pass = r.Password.Reveal()
	}
}

// NewClient returns a go-redis client for r: a *redis.Client in single mode, a *redis.ClusterClient in
// cluster mode, a Sentinel failover client in sentinel mode, always with ContextTimeoutEnabled (the store
// bounds each command by its context). It does not connect; the first command does. r must come from
// Load (checked, defaults applied, secrets resolved).
func (r *Redis) NewClient() (redis.UniversalClient, error) {
	switch {
	case r.URL != "" && r.Mode == RedisCluster:
		o, err := redis.ParseClusterURL(r.URL)
		if err != nil {
			return nil, fmt.Errorf("config: store.redis.url (not shown: it may hold a password): %w", redactErr(err, r.URL))
		}
		r.override(&o.PoolSize, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.Username, &o.Password)
		o.ContextTimeoutEnabled = true // the store bounds every command through the context
		return redis.NewClusterClient(o), nil
	case r.URL != "":
		o, err := redis.ParseURL(r.URL)
		if err != nil {
			return nil, fmt.Errorf("config: store.redis.url (not shown: it may hold a password): %w", redactErr(err, r.URL))
		}
		r.override(&o.PoolSize, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.Username, &o.Password)
		o.ContextTimeoutEnabled = true // the store bounds every command through the context
		return redis.NewClient(o), nil
	}
	return redis.NewUniversalClient(r.UniversalOptions()), nil
}

// UniversalOptions returns go-redis's options for r's Addrs form (URL empty): NewUniversalClient makes a
// cluster client in cluster mode, a failover client in sentinel mode, and a plain client otherwise.
func (r *Redis) UniversalOptions() *redis.UniversalOptions {
	o := &redis.UniversalOptions{
		Addrs:            r.Addrs,
		DB:               r.DB,
		Username:         r.Username.Reveal(),
		Password:         r.Password.Reveal(),
		SentinelPassword: r.SentinelPassword.Reveal(),
		PoolSize:         r.PoolSize,
		DialTimeout:      time.Duration(r.DialTimeout),
		ReadTimeout:      time.Duration(r.ReadTimeout),
		WriteTimeout:     time.Duration(r.WriteTimeout),
		IsClusterMode:    r.Mode == RedisCluster,
		// The store bounds every command through the context (store.RedisOptions.OpTimeout).
		ContextTimeoutEnabled: true,
	}
	if r.Mode == RedisSentinel {
		o.MasterName = r.MasterName
	}
	if r.TLS {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o
}

// Description names the mode and the servers for logs, without credentials.
func (r *Redis) Description() string {
	if r.URL != "" {
		u, err := url.Parse(r.URL)
		if err != nil {
			return r.Mode
		}
		return r.Mode + " " + u.Redacted()
	}
	return r.Mode + " " + strings.Join(r.Addrs, ",")
}

// defaultMode returns r's mode, or the one its fields imply.
func defaultMode(r *Redis) string {
	switch {
	case r.Mode != "":
		return r.Mode
	case r.MasterName != "":
		return RedisSentinel
	case len(r.Addrs) > 0:
		return RedisCluster
	}
	// go-redis's cluster URL form names the other seeds as addr= parameters; a single server's URL has
	// no such parameter, so KASSE_REDIS_URL alone can point at a cluster.
	if u, err := url.Parse(r.URL); err == nil && u.Query().Has("addr") {
		return RedisCluster
	}
	return RedisSingle
}

func orDefault(d Duration, def time.Duration) time.Duration {
	if d > 0 {
		return time.Duration(d)
	}
	return def
}

// redactErr drops the URL from go-redis's parse errors, which may repeat it with its password.
func redactErr(err error, raw string) error {
	msg := err.Error()
	if raw != "" && strings.Contains(msg, raw) {
		msg = strings.ReplaceAll(msg, raw, "<url>")
	}
	return fmt.Errorf("%s", msg)
}

// checkStore normalises store.redisUrl, KASSE_REDIS_URL and store.redis into c.Store.Redis, applies its
// defaults, resolves its secrets and reports what is wrong.
func checkStore(c *Config, getenv func(string) string, add func(ptr, format string, args ...any)) {
	fromEnv := getenv(EnvRedisURL)
	if fromEnv != "" {
		c.Store.RedisURL = fromEnv
	}
	if c.Store.RedisURL != "" && c.Store.Redis != nil && fromEnv == "" {
		add("/store/redisUrl", "give store.redis or store.redisUrl, not both")
		return
	}
	urlPtr := "/store/redis/url"
	switch {
	case c.Store.Redis == nil && c.Store.RedisURL == "":
		return
	case c.Store.Redis == nil:
		c.Store.Redis = &Redis{URL: c.Store.RedisURL}
		urlPtr = "/store/redisUrl"
	case fromEnv != "":
		// The mode stays what the file says (or implies with its url or addrs): a cluster's
		// KASSE_REDIS_URL is in the cluster URL form. A file that gives only settings (waitReplicas,
		// timeouts) leaves the mode to the URL. The URL's scheme decides TLS.
		r := *c.Store.Redis
		if r.URL != "" || len(r.Addrs) > 0 {
			r.Mode = defaultMode(&r)
		}
		r.URL, r.Addrs, r.TLS = fromEnv, nil, false
		c.Store.Redis = &r
	}
	r := c.Store.Redis
	r.Mode = defaultMode(r)
	urlProblem := func(format string, args ...any) {
		if fromEnv != "" {
			add(urlPtr, "environment variable %s "+format, append([]any{EnvRedisURL}, args...)...)
			return
		}
		add(urlPtr, format, args...)
	}
	switch {
	case r.URL == "" && len(r.Addrs) == 0:
		add("/store/redis", "give url or addrs")
	case r.URL != "" && len(r.Addrs) > 0:
		add("/store/redis", "give url or addrs, not both")
	case r.URL != "":
		// The value is never shown: a Redis URL may carry a password.
		u, err := url.Parse(r.URL)
		ok := err == nil && (u.Scheme == "redis" || u.Scheme == "rediss" || u.Scheme == "unix") &&
			(u.Scheme == "unix" || u.Host != "")
		switch {
		case !ok && r.Mode == RedisCluster:
			urlProblem("must be a redis://host:port?addr=host:port&addr=... or rediss:// cluster URL")
		case !ok:
			urlProblem("must be a redis://host:port/db, rediss:// or unix:// URL")
		case r.Mode == RedisSentinel:
			add("/store/redis/mode", "sentinel mode needs addrs (the sentinels) and masterName, not url")
		case r.Mode == RedisCluster:
			if _, err := redis.ParseClusterURL(r.URL); err != nil {
				urlProblem("not a cluster URL go-redis accepts")
			}
		default:
			if _, err := redis.ParseURL(r.URL); err != nil {
				urlProblem("not a URL go-redis accepts")
			}
		}
	default:
		for i, a := range r.Addrs {
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
				add("/store/redis/addrs/"+strconv.Itoa(i), "must be host:port, got %q", a)
			}
		}
		if r.Mode == RedisSingle && len(r.Addrs) != 1 {
			add("/store/redis/addrs", "single mode takes one address, got %d", len(r.Addrs))
		}
	}
	switch {
	case r.Mode == RedisSentinel && r.MasterName == "":
		add("/store/redis/masterName", "sentinel mode needs the master name")
	case r.Mode != RedisSentinel && r.MasterName != "":
		add("/store/redis/masterName", "only for sentinel mode, not %s", r.Mode)
	}
	if r.Mode == RedisCluster && r.DB != 0 {
		add("/store/redis/db", "a cluster has only database 0")
	}
	if r.URL != "" && r.TLS {
		add("/store/redis/tls", "with url, choose TLS with the rediss:// scheme")
	}
	secret := func(ptr, what, env string) Secret {
		if env == "" {
			return ""
		}
		v := getenv(env)
		switch {
		case v == "":
			add(ptr, "redis %s: environment variable %s is not set", what, env)
		case strings.ContainsFunc(v, isControl):
			add(ptr, "redis %s: environment variable %s contains control characters (a trailing newline?)", what, env)
		}
		return Secret(v)
	}
	r.Username = secret("/store/redis/usernameEnv", "user name", r.UsernameEnv)
	r.Password = secret("/store/redis/passwordEnv", "password", r.PasswordEnv)
	r.SentinelPassword = secret("/store/redis/sentinelPasswordEnv", "sentinel password", r.SentinelPasswordEnv)
	if r.SentinelPasswordEnv != "" && r.Mode != RedisSentinel {
		add("/store/redis/sentinelPasswordEnv", "only for sentinel mode, not %s", r.Mode)
	}
	for _, d := range []struct {
		ptr string
		v   Duration
	}{
		{"/store/redis/dialTimeout", r.DialTimeout},
		{"/store/redis/readTimeout", r.ReadTimeout},
		{"/store/redis/writeTimeout", r.WriteTimeout},
	} {
		if d.v < 0 {
			add(d.ptr, "must not be negative, got %s", d.v)
		}
	}
}

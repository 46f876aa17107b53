// Package command is kasse's command line: `kasse serve` (the default), `kasse version`,
// `kasse config check FILE`, `kasse plugin ...` (host/upgrade/cli), `kasse store migrate` (the Redis
// key layout, host/store) and `kasse help`. It parses arguments,
// builds the logger (host/logging), turns SIGINT and SIGTERM into a graceful shutdown that it logs, and
// maps outcomes to exit codes: 0 done, 1 failed, 2 a usage error (an unknown command or flag). What the
// service does is package host's; this package only starts and stops it.
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/hooks"
	"github.com/kassehq/kasse/host/logging"
	"github.com/kassehq/kasse/host/outbound"
	"github.com/kassehq/kasse/host/store"
	plugincli "github.com/kassehq/kasse/host/upgrade/cli"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

// EnvConfig is the environment variable that names the config file when -config is not given.
const EnvConfig = "KASSE_CONFIG"

// defaultConfig is the config file when neither -config nor KASSE_CONFIG says otherwise: the example,
// so that `go run ./host/cmd/kasse` in a fresh clone starts the demo.
const defaultConfig = "examples/kasse.yaml"

const usage = `usage: kasse <command> [flags]

commands:
  serve [-config FILE] [-log-format text|json] [-log-level debug|info|warn|error]
                        run the service (the default command); SIGINT or SIGTERM drains in-flight
                        requests and stops
  version               print kasse's version, commit, Go version and plugin ABI version
  config check [FILE]   check a config file as serve would (schema, invariants, environment variables,
                        platform adapters, plugin modules); exit 0 when it is good, 1 with the problems
  plugin <command>      package, sign, verify and inspect payment plugins (kasse plugin help)
  store migrate [-config FILE]
                        rewrite a Redis store written by an earlier kasse into the current key layout
                        (stop every kasse instance first); serve refuses a store in an earlier layout
  help                  print this

The config file is -config, else $KASSE_CONFIG, else examples/kasse.yaml. Relative paths in it are
relative to the file's directory.
`

// IO is what a command reads and writes besides its arguments.
type IO struct {
	// Stdout receives a command's results (version, a good config check, help).
	Stdout io.Writer
	// Stderr receives logs, problems and usage errors.
	Stderr io.Writer
	// Getenv resolves environment variables. Default os.Getenv.
	Getenv func(string) string
	// Adapters are the platform adapters serve and config check know. Default adapters.Registered().
	Adapters []adapters.Info
}

// Main runs the command line with the process's arguments (without the program name), standard streams
// and environment, and returns the exit code. Adapters registered by import are served.
func Main(args []string) int {
	return Run(context.Background(), args, IO{Stdout: os.Stdout, Stderr: os.Stderr})
}

// Run runs one command. serve runs until ctx is done or the process gets SIGINT or SIGTERM.
func Run(ctx context.Context, args []string, sys IO) int {
	if sys.Getenv == nil {
		sys.Getenv = os.Getenv
	}
	if sys.Adapters == nil {
		sys.Adapters = adapters.Registered()
	}
	if len(args) == 0 || (strings.HasPrefix(args[0], "-") && !isHelp(args[0])) {
		return serve(ctx, args, sys) // `kasse` and `kasse -config F` start the service, as they always did
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], sys)
	case "version":
		if len(args) > 1 {
			return usageError(sys, "version takes no arguments")
		}
		writeVersion(sys.Stdout)
		return 0
	case "config":
		if len(args) < 2 || args[1] != "check" {
			return usageError(sys, "config: the command is `kasse config check [FILE]`")
		}
		return configCheck(args[2:], sys)
	case "plugin":
		return plugincli.Main(args[1:], sys.Stdout, sys.Stderr)
	case "store":
		if len(args) < 2 || args[1] != "migrate" {
			return usageError(sys, "store: the command is `kasse store migrate [-config FILE]`")
		}
		return storeMigrate(ctx, args[2:], sys)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(sys.Stdout, usage)
		return 0
	}
	return usageError(sys, fmt.Sprintf("unknown command %q", args[0]))
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

func usageError(sys IO, msg string) int {
	fmt.Fprintf(sys.Stderr, "kasse: %s\n\n%s", msg, usage)
	return 2
}

// flagSet is a FlagSet that reports to stderr and does not exit.
func flagSet(name string, sys IO) *flag.FlagSet {
	fs := flag.NewFlagSet("kasse "+name, flag.ContinueOnError)
	fs.SetOutput(sys.Stderr)
	return fs
}

// parseExit is the exit code for a failed fs.Parse: 0 for -h, else 2.
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func (sys IO) configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := sys.Getenv(EnvConfig); v != "" {
		return v
	}
	return defaultConfig
}

// serve runs the service. The logger comes from the flags, else the config file's log section, else
// text at info; a config that does not load is logged one problem per line.
func serve(ctx context.Context, args []string, sys IO) int {
	fs := flagSet("serve", sys)
	configFlag := fs.String("config", "", "config file (default $KASSE_CONFIG, else "+defaultConfig+")")
	format := fs.String("log-format", "", "log format: text or json (default: the config's log.format, else text)")
	level := fs.String("log-level", "", "least severe level logged: debug, info, warn or error (default: the config's log.level, else info)")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() > 0 {
		return usageError(sys, fmt.Sprintf("serve: unexpected arguments %q", fs.Args()))
	}
	log, err := logging.New(sys.Stderr, *format, *level)
	if err != nil {
		return usageError(sys, "serve: "+err.Error())
	}
	path := sys.configPath(*configFlag)
	set, err := schemas.Compile()
	if err != nil {
		log.Error("kasse: cannot start", "err", err)
		return 1
	}
	// Read the file once for its log section; host.New reads (and checks) it again.
	cfg, err := config.Load(path, set, sys.Getenv)
	if err != nil {
		logging.Error(log, "kasse: cannot start: config refused", err, "path", path)
		return 1
	}
	if *format == "" || *level == "" {
		f, l := *format, *level
		if f == "" {
			f = cfg.Log.Format
		}
		if l == "" {
			l = cfg.Log.Level
		}
		configured, err := logging.New(sys.Stderr, f, l)
		if err != nil { // the schema allows only valid names; kept for a config that bypassed it
			log.Error("kasse: cannot start: log settings", "err", err)
			return 1
		}
		log = configured
	}
	// go-redis logs through its own package-level logger; route it into ours.
	redis.SetLogger(logging.RedisLogger(log))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	var stopping atomic.Int64 // unix nanoseconds of the signal
	go func() {
		select {
		case sig := <-sigc:
			stopping.Store(time.Now().UnixNano())
			log.Info("kasse: stopping: draining in-flight requests", "signal", sig.String(), "within", "10s")
			cancel()
		case <-ctx.Done():
		}
	}()

	if err := run(ctx, path, set, sys, log); err != nil {
		logging.Error(log, "kasse: stopped with an error", err)
		return 1
	}
	if at := stopping.Load(); at != 0 {
		log.Info("kasse: stopped", "drained", time.Since(time.Unix(0, at)).Round(time.Millisecond).String())
	} else {
		log.Info("kasse: stopped")
	}
	return 0
}

func run(ctx context.Context, path string, set *schemas.Set, sys IO, log *slog.Logger) error {
	s, err := host.New(ctx, host.Options{ConfigPath: path, Logger: log, Getenv: sys.Getenv, Adapters: sys.Adapters,
		Schemas: set})
	if err != nil {
		return err
	}
	defer func() { _ = s.Close(context.WithoutCancel(ctx)) }()
	l, err := net.Listen("tcp", s.Config().Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("kasse listening", "url", "http://"+l.Addr().String(), "publicUrl", s.Config().Server.PublicURL,
		"config", path, "version", host.Version)
	return s.Serve(ctx, l)
}

// configCheck checks a config file the way serve would before it listens, without starting anything.
func configCheck(args []string, sys IO) int {
	fs := flagSet("config check", sys)
	noEnv := fs.Bool("no-env", false, "treat every environment variable the file names as set (check the file alone, e.g. in CI without the secrets)")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() > 1 {
		return usageError(sys, fmt.Sprintf("config check: one file at most, got %q", fs.Args()))
	}
	path := sys.configPath(fs.Arg(0))
	getenv := sys.Getenv
	if *noEnv {
		getenv = func(name string) string {
			if name == config.EnvRedisURL {
				return sys.Getenv(name) // an override, not a secret: a placeholder would be read as a URL
			}
			return "placeholder-for-config-check-0123456789"
		}
	}
	set, err := schemas.Compile()
	if err != nil {
		fmt.Fprintf(sys.Stderr, "kasse config check: %v\n", err)
		return 1
	}
	cfg, err := config.Load(path, set, getenv)
	if err == nil {
		err = hooks.Check(sys.Adapters, cfg)
	}
	if err == nil {
		err = checkPluginFiles(cfg)
	}
	if err != nil {
		writeProblems(sys.Stderr, path, err)
		return 1
	}
	ids := make([]string, 0, len(cfg.Merchants))
	for id := range cfg.Merchants {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	fmt.Fprintf(sys.Stdout, "%s: ok (%d merchants: %s)\n", path, len(ids), strings.Join(ids, ", "))
	return 0
}

// storeMigrate rewrites the configured Redis store from key layout 1 into the current one (see
// store.Redis.MigrateLayout): first the outbound queues, then the store's keys and the layout marker.
func storeMigrate(ctx context.Context, args []string, sys IO) int {
	fs := flagSet("store migrate", sys)
	configFlag := fs.String("config", "", "config file (default $KASSE_CONFIG, else "+defaultConfig+")")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() > 0 {
		return usageError(sys, fmt.Sprintf("store migrate: unexpected arguments %q", fs.Args()))
	}
	path := sys.configPath(*configFlag)
	fail := func(err error) int {
		fmt.Fprintf(sys.Stderr, "kasse store migrate: %v\n", err)
		return 1
	}
	set, err := schemas.Compile()
	if err != nil {
		return fail(err)
	}
	cfg, err := config.Load(path, set, sys.Getenv)
	if err != nil {
		writeProblems(sys.Stderr, path, err)
		return 1
	}
	rc := cfg.Store.Redis
	if rc == nil {
		return fail(errors.New("the config has no store.redis (nor KASSE_REDIS_URL): the in-process store has nothing to migrate"))
	}
	client, err := rc.NewClient()
	if err != nil {
		return fail(err)
	}
	defer func() { _ = client.Close() }()
	rs, err := store.NewRedisFromClient(client, store.RedisOptions{})
	if err != nil {
		return fail(err)
	}
	if err := rs.Ping(ctx); err != nil {
		return fail(fmt.Errorf("redis store (%s): %w", rc.Description(), err))
	}
	tags := store.PartitionTags(store.QueuePartitions)
	jobs := 0
	for _, q := range []string{"outbound:", "inbox:"} {
		dst, err := outbound.NewPartitionedRedisStorage(client, rs.KeyPrefix()+q, tags)
		if err != nil {
			return fail(err)
		}
		for _, p := range rs.LayoutOnePrefixes() {
			old, err := outbound.NewRedisStorage(client, p+q)
			if err != nil {
				return fail(err)
			}
			n, err := old.MoveTo(ctx, dst)
			jobs += n
			if err != nil {
				return fail(fmt.Errorf("queue %s: %w", q, err))
			}
		}
	}
	rep, err := rs.MigrateLayout(ctx)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(sys.Stdout, "store %s: layout %s; moved %d keys, %d poll entries and %d queued jobs\n",
		rc.Description(), store.LayoutVersion, rep.Keys, rep.Polls, jobs)
	for _, k := range rep.Skipped {
		fmt.Fprintf(sys.Stdout, "left alone (not a key kasse wrote): %s\n", k)
	}
	return 0
}

// checkPluginFiles reports a merchant whose plugin has no module in plugins.dir: serve would refuse to
// start (a plugin can be uploaded through the admin API only once kasse runs).
func checkPluginFiles(cfg *config.Config) error {
	var problems []config.Problem
	ids := make([]string, 0, len(cfg.Merchants))
	for id := range cfg.Merchants {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		name := cfg.Merchants[id].Plugin
		wasm := filepath.Join(cfg.Plugins.Dir, name+".wasm")
		if _, err := os.Stat(wasm); err != nil {
			problems = append(problems, config.Problem{Pointer: "/merchants/" + escapePointer(id) + "/plugin",
				Detail: fmt.Sprintf("no module %s for plugin %s (build it with `make plugins`, or fix plugins.dir)", wasm, name)})
		}
	}
	if len(problems) > 0 {
		return &config.Error{Problems: problems}
	}
	return nil
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// writeProblems writes err as "PATH: N problems:" and one problem a line, or as one line when it is not a
// list of problems.
func writeProblems(w io.Writer, path string, err error) {
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) == 0 {
		fmt.Fprintf(w, "%s: %v\n", path, strings.TrimPrefix(strings.TrimPrefix(err.Error(), "config: "), path+": "))
		return
	}
	noun := "problems"
	if len(ce.Problems) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(w, "%s: %d %s:\n", path, len(ce.Problems), noun)
	for _, p := range ce.Problems {
		ptr := p.Pointer
		if ptr == "" {
			ptr = "(document)"
		}
		fmt.Fprintf(w, "  %s: %s\n", ptr, p.Detail)
	}
}

// writeVersion prints kasse's version, the module version and VCS commit the binary was built from (as
// the Go toolchain records them), the Go version and the plugin ABI version.
func writeVersion(w io.Writer) {
	module, commit := "(unknown)", "(unknown: built without VCS information)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		module = bi.Main.Path + " " + bi.Main.Version
		var rev, at, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			commit = rev
			if at != "" {
				commit += " (" + at + ")"
			}
			if modified == "true" {
				commit += " with uncommitted changes"
			}
		}
	}
	fmt.Fprintf(w, "kasse %s\nmodule:     %s\ncommit:     %s\ngo:         %s %s/%s\nplugin ABI: %d (loads %d and %d)\n",
		host.Version, module, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, abi.Version, abi.VersionJSON, abi.VersionBinary)
}

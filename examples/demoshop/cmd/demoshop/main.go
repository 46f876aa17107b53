// Command demoshop runs the demo web shop (package demoshop) against a running kasse, for `make run` and
// local development.
//
//	KASSE_DEMO_API_KEY=demo-api-key go run ./examples/demoshop/cmd/demoshop -addr 127.0.0.1:8081
//
// Flags:
//
//	-addr        listen address (default 127.0.0.1:8081)
//	-kasse       base URL of kasse's HTTP API (default http://127.0.0.1:8080)
//	-merchant    the shop's merchant id in kasse's config (default demo)
//	-public-url  the shop's base URL as browsers reach it, used in returnUrls (default http://<addr>)
//	-log-format  text (default) or json
//	-log-level   debug, info (default), warn or error
//
// The merchant's kasse API key is read from the environment variable KASSE_DEMO_API_KEY, never from a flag
// (flags show up in process listings), and is never logged. Without it the shop calls kasse with no
// Authorization header, which only a merchant without apiKeyEnv accepts.
//
// The shop's merchant pages (/orders) have no login: keep -addr on loopback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kassehq/kasse/examples/demoshop"
)

// apiKeyEnv names the environment variable holding the merchant's kasse API key.
const apiKeyEnv = "KASSE_DEMO_API_KEY"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "demoshop:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx is done, and calls ready (if not nil) with the address it listens on.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("demoshop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	kasseURL := fs.String("kasse", "http://127.0.0.1:8080", "base URL of kasse's HTTP API")
	merchant := fs.String("merchant", "demo", "the shop's merchant id in kasse's config")
	publicURL := fs.String("public-url", "", "the shop's base URL as browsers reach it (default http://<addr>)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "least severe level logged: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	var logger *slog.Logger
	switch *logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	case "json":
		logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	default:
		return fmt.Errorf("-log-format %q: must be text or json", *logFormat)
	}
	apiKey := getenv(apiKeyEnv)
	if apiKey == "" {
		logger.Warn("demoshop: " + apiKeyEnv + " is not set; calling kasse without an API key")
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if host, _, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			logger.Warn("demoshop: listening beyond loopback; the merchant pages have no login", "addr", ln.Addr().String())
		}
	}
	if *publicURL == "" {
		*publicURL = "http://" + ln.Addr().String()
	}
	shop, err := demoshop.New(demoshop.Config{
		KasseURL:  *kasseURL,
		Merchant:  *merchant,
		APIKey:    apiKey,
		PublicURL: *publicURL,
		// The "Vipps Express Checkout" button follows the merchant's expressCheckout in kasse's config.
		ExpressFromKasse: true,
		Logger:           logger,
	})
	if err != nil {
		_ = ln.Close()
		return err
	}

	srv := &http.Server{
		Handler:           shop.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("demoshop: listening", "addr", ln.Addr().String(), "public_url", *publicURL, "kasse", *kasseURL,
		"merchant", *merchant, "api_key_set", apiKey != "")
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	}
}

// Command vippssim runs the Vipps eCom v2 simulator (package vippssim) with
// the demo tenant, for local development and demos.
//
//	go run ./examples/vippssim/cmd/vippssim -addr 127.0.0.1:8090
//
// Flags:
//
//	-addr                 listen address (default 127.0.0.1:8090)
//	-public-url           base URL in landing page links (default http://<addr>)
//	-allow-http-loopback  accept http:// callback and fallBack URLs on loopback hosts
//	-seed                 seed of the fault injection's random source (default: random, logged)
//	-faults               faults to start with, as JSON for PUT /_sim/faults, e.g.
//	                      '{"callbacks":{"drop":0.3,"delay":"0s..2s"},"latency":"0s..500ms"}'
//	-v                    log every request (default: a summary, one line per money operation,
//	                      callback and webhook, and per failed request)
//	-log-format           text (default) or json
//	-log-level            debug, info (default), warn or error
//
// The demo credentials are MSN 123456, client_id demo-client-id, client_secret
// demo-client-secret and Ocp-Apim-Subscription-Key demo-subscription-key.
// Logs go to stderr and never contain secrets.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "vippssim:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx is done, and calls ready (if not nil)
// with the address it listens on.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("vippssim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	publicURL := fs.String("public-url", "", "base URL used in landing page links (default http://<addr>)")
	allowHTTP := fs.Bool("allow-http-loopback", false, "accept http:// callbackPrefix/fallBack URLs whose host is loopback (dev only)")
	seed := fs.Uint64("seed", 0, "seed of the fault injection's random source (0: random, logged)")
	faultsJSON := fs.String("faults", "", `faults to start with, as JSON for PUT /_sim/faults, e.g. '{"callbacks":{"drop":0.3},"latency":"0s..500ms"}'`)
	ledgerJSON := fs.String("ledger", "", `ledger fees and report paging, as JSON for PUT /_sim/ledger/config, e.g. '{"captureFee":400,"gross":true}'`)
	verbose := fs.Bool("v", false, "log every request (default: a summary, and the requests that failed)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "least severe level logged: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	default:
		return fmt.Errorf("-log-format %q: must be text or json", *logFormat)
	}
	logger := slog.New(handler).With("component", "vippssim")
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var faults vippssim.Faults
	if *faultsJSON != "" {
		dec := json.NewDecoder(strings.NewReader(*faultsJSON))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&faults); err != nil {
			return fmt.Errorf("-faults: %w", err)
		}
	}
	var ledger vippssim.LedgerConfig
	if *ledgerJSON != "" {
		dec := json.NewDecoder(strings.NewReader(*ledgerJSON))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ledger); err != nil {
			return fmt.Errorf("-ledger: %w", err)
		}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if *publicURL == "" {
		*publicURL = "http://" + ln.Addr().String()
	}
	sim, err := vippssim.New(vippssim.Config{
		Tenants:           []vippssim.Tenant{vippssim.DemoTenant()},
		PublicURL:         *publicURL,
		AllowHTTPLoopback: *allowHTTP,
		Logger:            logger,
		Verbose:           *verbose,
		Seed:              *seed,
	})
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("start simulator: %w", err)
	}
	defer sim.Close()
	if err := sim.SetLedgerConfig(ledger); err != nil {
		_ = ln.Close()
		return fmt.Errorf("-ledger: %w", err)
	}
	if *faultsJSON != "" {
		if err := sim.SetFaults(faults); err != nil {
			_ = ln.Close()
			return fmt.Errorf("-faults: %w", err)
		}
	}

	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String(), "publicUrl", *publicURL, "allowHttpLoopback", *allowHTTP,
		"demoMsn", vippssim.DemoTenant().MerchantSerialNumber, "verbose", *verbose)
	if ready != nil {
		ready(ln.Addr().String())
	}

	tick := time.NewTicker(time.Second) // expire abandoned payments even if nobody polls
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			sim.ExpireDue()
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
			sim.Thaw() // Shutdown waits for the requests a freeze holds
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		}
	}
}

// Command keygate-load is a small, bounded load generator for a keygate
// running on this machine. It drives one endpoint at a time from c
// keep-alive connections and reports throughput, errors and latency
// percentiles.
//
// It only ever talks to loopback (localhost, 127.0.0.0/8, ::1): any other
// host is refused before a connection is made, every dial is checked
// again, proxies from the environment are ignored and redirects are not
// followed. A run always ends by itself: by -d, by -n, and in any case
// after -max-d.
//
// Examples (keygate serve --listen 127.0.0.1:8080 --log-level warn):
//
//	keygate-load -mode discovery -c 16 -d 10s
//	keygate-load -mode jwks -n 200000
//	keygate-load -mode token -client-id c_… -client-secret …
//	keygate-load -mode introspect -client-id c_… -client-secret … -json
//
// The -client-id/-client-secret pair must belong to a confidential client
// allowed the client_credentials grant (keygate client add --grant
// client_credentials).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"time"
)

// maxRunTime caps every run, whatever -d and -n say, so a forgotten or
// mistyped invocation cannot run away.
const maxRunTime = 10 * time.Minute

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "keygate-load:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygate-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.StringVar(&cfg.BaseURL, "url", "http://127.0.0.1:8080", "keygate's base URL (loopback only)")
	fs.IntVar(&cfg.Conns, "c", 16, "concurrent connections (one worker each)")
	fs.DurationVar(&cfg.Duration, "d", 0, "measured duration (default 10s unless -n is given)")
	fs.Int64Var(&cfg.Requests, "n", 0, "measured request count (0: unlimited, bounded by -d)")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "warm-up before measuring; its requests are not counted")
	fs.DurationVar(&cfg.MaxDuration, "max-d", 2*time.Minute, "hard cap on the measured phase, even with -n (at most 10m)")
	fs.StringVar(&cfg.Mode, "mode", "discovery", "token, introspect, discovery or jwks")
	fs.StringVar(&cfg.ClientID, "client-id", os.Getenv("KEYGATE_LOAD_CLIENT_ID"), "client id for token/introspect (env KEYGATE_LOAD_CLIENT_ID)")
	fs.StringVar(&cfg.ClientSecret, "client-secret", os.Getenv("KEYGATE_LOAD_CLIENT_SECRET"), "client secret (env KEYGATE_LOAD_CLIENT_SECRET)")
	fs.StringVar(&cfg.Auth, "auth", "basic", "client authentication: basic (client_secret_basic) or post (client_secret_post)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if err := cfg.normalise(); err != nil {
		return usageError{err}
	}

	// The generator shares the machine with the server: collect garbage less
	// often (its live heap is a few MB of latency samples) to leave the
	// server more CPU.
	debug.SetGCPercent(400)

	// Ctrl-C ends the run early but still prints what was measured.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	l, err := newLoader(cfg)
	if err != nil {
		return err
	}
	defer l.close()
	if err := l.prepare(ctx); err != nil {
		return err
	}
	if cfg.Warmup > 0 {
		fmt.Fprintf(stderr, "warming up %s for %s on %d connections…\n", cfg.Mode, cfg.Warmup, cfg.Conns)
		l.run(ctx, cfg.Warmup, 0)
	}
	fmt.Fprintf(stderr, "measuring %s: %s\n", cfg.Mode, cfg.boundString())
	res := l.run(ctx, cfg.Duration, cfg.Requests)
	sum := Summarize(res)
	sum.Mode, sum.URL, sum.Conns = cfg.Mode, l.target.String(), cfg.Conns
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	_, err = io.WriteString(stdout, sum.String())
	return err
}

// Config is one invocation's settings.
type Config struct {
	BaseURL      string
	Conns        int
	Duration     time.Duration
	Requests     int64
	Warmup       time.Duration
	MaxDuration  time.Duration
	Mode         string
	ClientID     string
	ClientSecret string
	Auth         string
	Timeout      time.Duration
}

// normalise checks the flags and fills the bounds: the measured phase always
// ends by Duration, which never exceeds MaxDuration (itself at most
// maxRunTime).
func (c *Config) normalise() error {
	switch c.Mode {
	case modeToken, modeIntrospect:
		if c.ClientID == "" || c.ClientSecret == "" {
			return fmt.Errorf("-mode %s needs -client-id and -client-secret", c.Mode)
		}
	case modeDiscovery, modeJWKS:
	default:
		return fmt.Errorf("-mode %q: want token, introspect, discovery or jwks", c.Mode)
	}
	if c.Auth != "basic" && c.Auth != "post" {
		return fmt.Errorf("-auth %q: want basic or post", c.Auth)
	}
	if c.Conns < 1 || c.Conns > 1024 {
		return fmt.Errorf("-c %d: want 1 to 1024", c.Conns)
	}
	if c.Requests < 0 || c.Duration < 0 || c.Warmup < 0 || c.Timeout <= 0 {
		return errors.New("-n, -d, -warmup must not be negative and -timeout must be positive")
	}
	if c.MaxDuration <= 0 || c.MaxDuration > maxRunTime {
		return fmt.Errorf("-max-d %s: want more than 0 and at most %s", c.MaxDuration, maxRunTime)
	}
	if c.Warmup > time.Minute {
		return errors.New("-warmup: at most 1m")
	}
	if c.Duration == 0 {
		if c.Requests == 0 {
			c.Duration = 10 * time.Second
		} else {
			c.Duration = c.MaxDuration
		}
	}
	if c.Duration > c.MaxDuration {
		return fmt.Errorf("-d %s exceeds -max-d %s", c.Duration, c.MaxDuration)
	}
	if _, err := loopbackURL(c.BaseURL); err != nil {
		return err
	}
	return nil
}

func (c *Config) boundString() string {
	if c.Requests > 0 {
		return fmt.Sprintf("%d requests (at most %s) on %d connections", c.Requests, c.Duration, c.Conns)
	}
	return fmt.Sprintf("%s on %d connections", c.Duration, c.Conns)
}

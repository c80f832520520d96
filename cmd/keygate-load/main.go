// Command keygate-load is a small, bounded load generator for a keygate
// running on this machine. It drives one endpoint, or one kind of sign-in,
// at a time from c workers and reports throughput, errors, latency
// percentiles and, given the server's pid, its resident memory.
//
// The sign-in modes drive keygate's pages as a browser does (cookies, CSRF
// tokens, flow ids, redirects followed within keygate) for users the
// generator first creates with the keygate CLI (-keygate, -data-dir) and
// enrols through the enrolment pages. A sign-in counts only when the code
// it ends with is redeemed for tokens whose ID token verifies and names
// the user:
//
//	signin-totp     password, then the authenticator app's code. A TOTP step
//	                is single-use per user, so each user signs in at most
//	                once per 30 s: -users must be at least 30 × the rate
//	                (the default 1000 covers 33/s; a shortfall shows as
//	                totp waits).
//	signin-passkey  a discoverable passkey alone (a software authenticator,
//	                each user's own key pair).
//	sso             a browser signed in at enrolment signs in to the app
//	                without a page.
//	refresh         refresh_token grants, each rotating the user's token.
//
// -id-token-alg ES256 registers the app for ES256 ID tokens instead of
// RS256, the default; its ID tokens must then be signed with ES256.
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
//	keygate-load -mode signin-passkey -data-dir ./keygate-data -server-pid $(pidof keygate)
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
	fs.StringVar(&cfg.Mode, "mode", "discovery", "token, introspect, discovery, jwks, signin-totp, signin-passkey, sso or refresh")
	fs.StringVar(&cfg.ClientID, "client-id", os.Getenv("KEYGATE_LOAD_CLIENT_ID"), "client id for token/introspect (env KEYGATE_LOAD_CLIENT_ID)")
	fs.StringVar(&cfg.ClientSecret, "client-secret", os.Getenv("KEYGATE_LOAD_CLIENT_SECRET"), "client secret (env KEYGATE_LOAD_CLIENT_SECRET)")
	fs.StringVar(&cfg.Auth, "auth", "basic", "client authentication: basic (client_secret_basic) or post (client_secret_post)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.IntVar(&cfg.Users, "users", 0, "sign-in modes: users to create and enrol, at least -c (default 1000 for signin-totp, 200 otherwise)")
	fs.StringVar(&cfg.Keygate, "keygate", "keygate", "sign-in modes: the keygate binary that creates the users and the app")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "sign-in modes: the server's --data-dir, passed to the keygate CLI (default: its own default)")
	fs.StringVar(&cfg.IDTokenAlg, "id-token-alg", "RS256", "sign-in modes: the app's ID token algorithm, RS256 or ES256 (keygate client add --id-token-alg); its ID tokens must be signed with it")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "the server's process id on this machine: report its RSS (0: do not)")
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

	var l runner
	var err error
	if isSignInMode(cfg.Mode) {
		var args []string
		if cfg.DataDir != "" {
			args = []string{"--data-dir", cfg.DataDir}
		}
		l, err = newSignIns(cfg, cli{bin: cfg.Keygate, args: args}, stderr)
	} else {
		l, err = newLoader(cfg)
	}
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
	var rss *rssWatch
	var rssBefore int64
	var cpuBefore time.Duration
	if cfg.ServerPID != 0 {
		if rssBefore, err = readRSS(cfg.ServerPID); err != nil {
			return fmt.Errorf("-server-pid: %w", err)
		}
		if cpuBefore, err = readCPU(cfg.ServerPID); err != nil {
			return fmt.Errorf("-server-pid: %w", err)
		}
		rss = watchRSS(cfg.ServerPID)
	}
	res := l.run(ctx, cfg.Duration, cfg.Requests)
	sum := Summarize(res)
	sum.Mode, sum.URL, sum.Conns = cfg.Mode, l.where(), cfg.Conns
	if rss != nil {
		if cpu, err := readCPU(cfg.ServerPID); err == nil {
			sum.ServerCPU = cpu - cpuBefore
		}
		sum.RSSBefore, sum.RSSPeak = rssBefore, rss.finish()
		sum.RSSAfter, _ = readRSS(cfg.ServerPID)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	_, err = io.WriteString(stdout, sum.String())
	return err
}

// runner is one mode's driver.
type runner interface {
	prepare(ctx context.Context) error // one-off requests and set-up before the runs
	run(ctx context.Context, d time.Duration, n int64) Result
	where() string // what is measured, for the summary
	close()
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
	Users        int
	Keygate      string
	DataDir      string
	IDTokenAlg   string // the app's: RS256 (also when empty) or ES256
	ServerPID    int
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
	case modeSignInTOTP, modeSignInPasskey, modeSSO, modeRefresh:
		if c.Users == 0 {
			c.Users = 200
			if c.Mode == modeSignInTOTP {
				c.Users = 1000
			}
		}
		if c.Users < c.Conns || c.Users > 100000 {
			return fmt.Errorf("-users %d: want from -c (%d) to 100000", c.Users, c.Conns)
		}
		if c.Keygate == "" {
			return errors.New("-keygate: the sign-in modes create their users with the keygate CLI")
		}
	default:
		return fmt.Errorf("-mode %q: want token, introspect, discovery, jwks, signin-totp, signin-passkey, sso or refresh", c.Mode)
	}
	switch c.IDTokenAlg {
	case "":
		c.IDTokenAlg = "RS256"
	case "RS256", "ES256":
	default:
		return fmt.Errorf("-id-token-alg %q: want RS256 or ES256", c.IDTokenAlg)
	}
	if c.ServerPID < 0 {
		return fmt.Errorf("-server-pid %d: want a process id", c.ServerPID)
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

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/oidc"
)

// clearEnv unsets every variable the configuration reads, so the machine's
// environment cannot leak into a test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"KEYGATE_CONFIG", "KEYGATE_DATA_DIR", "KEYGATE_ISSUER", "KEYGATE_LISTEN",
		"KEYGATE_DEV", "KEYGATE_ALERT_SECRET", "KEYGATE_MASTER_KEY", "KEYGATE_ADMIN_EMAIL", "KEYGATE_DATABASE_URL"} {
		t.Setenv(k, "")
	}
}

// writeConfig writes a YAML file into the test's directory.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keygate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateIssuer(t *testing.T) {
	tests := []struct {
		name   string
		issuer string
		dev    bool
		want   string // part of the error; "" for accepted
	}{
		{"https on any host is accepted", "https://id.example.com", false, ""},
		{"https with a port and a path is accepted", "https://example.com:8443/idp", false, ""},
		{"plain http on localhost is accepted", "http://localhost:8080", false, ""},
		{"plain http on 127.0.0.1 is accepted", "http://127.0.0.1:8080", false, ""},
		{"plain http on [::1] is accepted", "http://[::1]:8080", false, ""},
		{"plain http on another host is refused", "http://id.example.com", false, "plain http on a non-localhost host"},
		{"plain http on a LAN address is refused", "http://192.168.1.10:8080", false, "plain http on a non-localhost host"},
		{"plain http on a host named like localhost is refused", "http://localhost.example.com", false, "plain http on a non-localhost host"},
		{"plain http on another host is accepted with --dev", "http://id.example.com", true, ""},
		{"a query is refused", "https://id.example.com?tenant=a", false, "must not have a query or fragment"},
		{"a fragment is refused", "https://id.example.com#top", false, "must not have a query or fragment"},
		{"a query is refused even with --dev", "http://id.example.com?x=1", true, "must not have a query or fragment"},
		{"an empty issuer is refused", "", false, "must be an absolute http(s) URL"},
		{"a host without a scheme is refused", "id.example.com", false, "must be an absolute http(s) URL"},
		{"another scheme is refused", "ftp://id.example.com", false, "must be an absolute http(s) URL"},
		{"a scheme without a host is refused", "https:///path", false, "must be an absolute http(s) URL"},
		{"an unparseable URL is refused", "https://id.example.com/%zz", false, "must be an absolute http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateIssuer(tt.issuer, tt.dev)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("validateIssuer(%q, dev=%v) = %v, want accepted", tt.issuer, tt.dev, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validateIssuer(%q, dev=%v) = %v, want an error containing %q", tt.issuer, tt.dev, err, tt.want)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	t.Run("no file is an empty configuration", func(t *testing.T) {
		fc, err := loadFile("")
		if err != nil || fc.Issuer != "" || fc.Dev {
			t.Fatalf("loadFile(\"\") = %+v, %v", fc, err)
		}
	})
	t.Run("an empty file is an empty configuration", func(t *testing.T) {
		fc, err := loadFile(writeConfig(t, ""))
		if err != nil || fc.Issuer != "" {
			t.Fatalf("loadFile(empty) = %+v, %v", fc, err)
		}
	})
	t.Run("a missing file is a usage error naming it", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "absent.yaml")
		_, err := loadFile(path)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "absent.yaml") {
			t.Fatalf("loadFile = %v, want a usage error naming the file", err)
		}
	})
	t.Run("every key is read", func(t *testing.T) {
		fc, err := loadFile(writeConfig(t, `
issuer: https://id.example.com
listen: 0.0.0.0:9000
data_dir: /var/lib/keygate
dev: true
trusted_proxies: [10.0.0.0/8, 192.0.2.1]
tls: {cert: c.pem, key: k.pem}
tokens: {access_token: 5m, refresh_token: 720h, id_token: 30m, authorize_code: 30s, refresh_grace: 2s}
session: {lifetime: 8h}
keys: {retention: 24h}
alerts: {webhooks: [https://hooks.example.com/a], secret_file: alert.key}
throttle: {window: 10m, per_account: 7, per_ip: 70}
admin: {fresh_key_tap: 2m, bulk_read_limit: 12, bulk_read_window: 1h}
`))
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			name      string
			got, want any
		}{
			{"issuer", fc.Issuer, "https://id.example.com"},
			{"listen", fc.Listen, "0.0.0.0:9000"},
			{"data_dir", fc.DataDir, "/var/lib/keygate"},
			{"dev", fc.Dev, true},
			{"trusted_proxies", strings.Join(fc.TrustedProxies, " "), "10.0.0.0/8 192.0.2.1"},
			{"tls.cert", fc.TLS.Cert, "c.pem"},
			{"tokens.access_token", time.Duration(fc.Tokens.AccessToken), 5 * time.Minute},
			{"tokens.refresh_token", time.Duration(fc.Tokens.RefreshToken), 720 * time.Hour},
			{"tokens.id_token", time.Duration(fc.Tokens.IDToken), 30 * time.Minute},
			{"tokens.authorize_code", time.Duration(fc.Tokens.AuthorizeCode), 30 * time.Second},
			{"tokens.refresh_grace", time.Duration(fc.Tokens.RefreshGrace), 2 * time.Second},
			{"session.lifetime", time.Duration(fc.Session.Lifetime), 8 * time.Hour},
			{"keys.retention", time.Duration(fc.Keys.Retention), 24 * time.Hour},
			{"alerts.secret_file", fc.Alerts.SecretFile, "alert.key"},
			{"throttle.window", time.Duration(fc.Throttle.Window), 10 * time.Minute},
			{"throttle.per_account", fc.Throttle.PerAccount, 7},
			{"throttle.per_ip", fc.Throttle.PerIP, 70},
			{"admin.fresh_key_tap", time.Duration(fc.Admin.FreshKeyTap), 2 * time.Minute},
			{"admin.bulk_read_limit", fc.Admin.BulkReadLimit, 12},
			{"admin.bulk_read_window", time.Duration(fc.Admin.BulkReadWindow), time.Hour},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		}
	})

	refused := []struct {
		name, yaml string
		want       []string
	}{
		{"an unknown top-level key is refused, naming the key and its line",
			"issuer: https://id.example.com\nisuer: https://typo.example.com\n", []string{`line 2: unknown key "isuer"`}},
		{"an unknown nested key is refused, naming the key and its line",
			"tokens:\n  access_token: 5m\n  acess_token: 10m\n", []string{`line 3: unknown key "acess_token"`}},
		{"every unknown key is reported at once",
			"isuer: x\nsession:\n  lifetme: 1h\nthrottle:\n  per_acount: 3\n",
			[]string{`line 1: unknown key "isuer"`, `line 3: unknown key "lifetme"`, `line 5: unknown key "per_acount"`}},
		{"a bad duration names its line and value",
			"issuer: https://id.example.com\ntokens:\n  access_token: 5m\n  refresh_token: 30 days\n", []string{"line 4", `"30 days"`, "not a duration"}},
		{"a negative duration is refused, naming its line",
			"throttle:\n  window: -15m\n", []string{"line 2", `"-15m"`, "negative"}},
		{"a number without a unit is not a duration",
			"session:\n  lifetime: 3600\n", []string{"line 2", `"3600"`, "not a duration"}},
		{"a list where a value belongs is refused",
			"listen: [a, b]\n", []string{"line 1"}},
		{"text that is not YAML is refused",
			"issuer: [unclosed\n", []string{"yaml"}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.yaml)
			_, err := loadFile(path)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("loadFile = %v, want a usage error", err)
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "struct {") || strings.Contains(err.Error(), "main.") {
				t.Errorf("error %q speaks of Go types, not of the file", err)
			}
		})
	}
}

func TestResolvePrecedence(t *testing.T) {
	file := "data_dir: from-file\nissuer: https://file.example.com/\nlisten: 127.0.0.1:3000\n"
	type sources struct {
		flag, env string
		inFile    bool
	}
	tests := []struct {
		name string
		src  sources
		want settings
	}{
		{"a flag beats the environment and the file",
			sources{flag: "flag", env: "env", inFile: true},
			settings{dataDir: "from-flag", issuer: "https://flag.example.com", listen: "127.0.0.1:1000"}},
		{"the environment beats the file",
			sources{env: "env", inFile: true},
			settings{dataDir: "from-env", issuer: "https://env.example.com", listen: "127.0.0.1:2000"}},
		{"the file beats the defaults",
			sources{inFile: true},
			settings{dataDir: "from-file", issuer: "https://file.example.com", listen: "127.0.0.1:3000"}},
		{"the defaults apply when nothing is set",
			sources{},
			settings{dataDir: "keygate-data", issuer: "", listen: "127.0.0.1:8080"}},
		{"a flag beats the file when the environment is empty",
			sources{flag: "flag", inFile: true},
			settings{dataDir: "from-flag", issuer: "https://flag.example.com", listen: "127.0.0.1:1000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			var g globalOptions
			listenFlag := ""
			if tt.src.flag != "" {
				g.dataDir, g.issuer, listenFlag = "from-flag", "https://flag.example.com/", "127.0.0.1:1000"
			}
			if tt.src.env != "" {
				t.Setenv("KEYGATE_DATA_DIR", "from-env")
				t.Setenv("KEYGATE_ISSUER", "https://env.example.com")
				t.Setenv("KEYGATE_LISTEN", "127.0.0.1:2000")
			}
			if tt.src.inFile {
				g.configFile = writeConfig(t, file)
			}
			s, err := resolve(&g, listenFlag, false)
			if err != nil {
				t.Fatal(err)
			}
			if s.dataDir != tt.want.dataDir || s.issuer != tt.want.issuer || s.listen != tt.want.listen {
				t.Fatalf("resolved data dir %q, issuer %q, listen %q; want %q, %q, %q",
					s.dataDir, s.issuer, s.listen, tt.want.dataDir, tt.want.issuer, tt.want.listen)
			}
		})
	}

	t.Run("the config file comes from the flag before the environment", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("KEYGATE_CONFIG", writeConfig(t, "listen: 127.0.0.1:4000\n"))
		g := globalOptions{configFile: writeConfig(t, "listen: 127.0.0.1:5000\n")}
		s, err := resolve(&g, "", false)
		if err != nil || s.listen != "127.0.0.1:5000" {
			t.Fatalf("listen %q, %v; want the flag's file's 127.0.0.1:5000", s.listen, err)
		}
		g.configFile = ""
		s, err = resolve(&g, "", false)
		if err != nil || s.listen != "127.0.0.1:4000" {
			t.Fatalf("listen %q, %v; want the environment's file's 127.0.0.1:4000", s.listen, err)
		}
	})

	devs := []struct {
		name      string
		flag      bool
		env, yaml string
		want      bool
	}{
		{"dev is off by default", false, "", "", false},
		{"dev is on with the flag", true, "", "", true},
		{"dev is on with KEYGATE_DEV=1", false, "1", "", true},
		{"dev is on with dev: true in the file", false, "", "dev: true\n", true},
		{"KEYGATE_DEV=yes does not turn dev on", false, "yes", "", false},
	}
	for _, tt := range devs {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("KEYGATE_DEV", tt.env)
			var g globalOptions
			if tt.yaml != "" {
				g.configFile = writeConfig(t, tt.yaml)
			}
			s, err := resolve(&g, "", tt.flag)
			if err != nil || s.dev != tt.want {
				t.Fatalf("dev = %v, %v; want %v", s.dev, err, tt.want)
			}
		})
	}

	t.Run("a broken config file fails resolution", func(t *testing.T) {
		clearEnv(t)
		g := globalOptions{configFile: writeConfig(t, "bogus: 1\n")}
		if _, err := resolve(&g, "", false); err == nil {
			t.Fatal("resolve accepted an unknown key")
		}
	})
}

func TestServerConfig(t *testing.T) {
	t.Run("zero configuration gives the documented defaults", func(t *testing.T) {
		clearEnv(t)
		s, err := resolve(&globalOptions{}, "", false)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := s.serverConfig()
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			name      string
			got, want any
		}{
			{"issuer", cfg.Issuer, "http://localhost:8080"},
			{"listen", cfg.Listen, "127.0.0.1:8080"},
			{"secure cookies", cfg.SecureCookies, false},
			{"lifetimes", cfg.Lifetimes, oidc.DefaultLifetimes},
			{"session lifetime", cfg.SessionTTL, 12 * time.Hour},
			{"key retention", cfg.KeyRetention, 48 * time.Hour},
			{"throttle window", cfg.Throttle.Window, 15 * time.Minute},
			{"throttle per account", cfg.Throttle.PerAccount, 5},
			{"throttle per IP", cfg.Throttle.PerIP, 50},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		}
	})

	t.Run("durations and settings from the file reach the server configuration", func(t *testing.T) {
		clearEnv(t)
		secretFile := filepath.Join(t.TempDir(), "alert.key")
		if err := os.WriteFile(secretFile, []byte("  a-secret-of-more-than-16-bytes \n"), 0o600); err != nil {
			t.Fatal(err)
		}
		g := globalOptions{configFile: writeConfig(t, `
issuer: https://id.example.com
trusted_proxies: [10.0.0.0/8, 192.0.2.1, "2001:db8::1"]
tokens: {access_token: 5m, refresh_token: 720h, refresh_grace: 2s}
session: {lifetime: 8h}
keys: {retention: 24h}
alerts: {webhooks: [https://hooks.example.com/a], secret_file: `+strconv.Quote(secretFile)+`}
throttle: {window: 10m, per_account: 7}
admin: {fresh_key_tap: 2m, bulk_read_limit: 12}
`)}
		s, err := resolve(&g, "", false)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := s.serverConfig()
		if err != nil {
			t.Fatal(err)
		}
		var proxies []string
		for _, p := range cfg.TrustedProxies {
			proxies = append(proxies, p.String())
		}
		checks := []struct {
			name      string
			got, want any
		}{
			{"secure cookies follow an https issuer", cfg.SecureCookies, true},
			{"the access token lifetime is read", cfg.Lifetimes.AccessToken, 5 * time.Minute},
			{"the refresh token lifetime is read", cfg.Lifetimes.RefreshToken, 720 * time.Hour},
			{"the refresh grace is read", cfg.Lifetimes.RefreshGrace, 2 * time.Second},
			{"an unset ID token lifetime keeps its default", cfg.Lifetimes.IDToken, oidc.DefaultLifetimes.IDToken},
			{"the session lifetime is read", cfg.SessionTTL, 8 * time.Hour},
			{"the key retention is read", cfg.KeyRetention, 24 * time.Hour},
			{"the throttle window is read", cfg.Throttle.Window, 10 * time.Minute},
			{"the per-account limit is read", cfg.Throttle.PerAccount, 7},
			{"an unset per-IP limit keeps its default", cfg.Throttle.PerIP, 50},
			{"single addresses become host prefixes", strings.Join(proxies, " "), "10.0.0.0/8 192.0.2.1/32 2001:db8::1/128"},
			{"the alert secret is read from its file, trimmed", string(cfg.AlertSecret), "a-secret-of-more-than-16-bytes"},
			{"the admin key-tap freshness is read", cfg.Admin.FreshKeyTap, 2 * time.Minute},
			{"the admin bulk-read limit is read", cfg.Admin.BulkReadLimit, 12},
			{"an unset bulk-read window is left to the console's default", cfg.Admin.BulkReadWindow, time.Duration(0)},
		}
		for _, c := range checks {
			t.Run(c.name, func(t *testing.T) {
				if c.got != c.want {
					t.Fatalf("got %v, want %v", c.got, c.want)
				}
			})
		}
	})

	t.Run("the alert secret may come from the environment", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("KEYGATE_ALERT_SECRET", "environment-secret-0123456789")
		g := globalOptions{configFile: writeConfig(t, "alerts: {webhooks: [https://hooks.example.com/a]}\n")}
		s, err := resolve(&g, "", false)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := s.serverConfig()
		if err != nil || string(cfg.AlertSecret) != "environment-secret-0123456789" {
			t.Fatalf("alert secret %q, %v", cfg.AlertSecret, err)
		}
	})

	t.Run("a plain http webhook is accepted with --dev", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("KEYGATE_ALERT_SECRET", "environment-secret-0123456789")
		g := globalOptions{configFile: writeConfig(t, "alerts: {webhooks: [http://127.0.0.1:9/hook]}\n")}
		s, err := resolve(&g, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.serverConfig(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("every problem is reported at once, as a usage error", func(t *testing.T) {
		clearEnv(t)
		g := globalOptions{configFile: writeConfig(t, `
issuer: http://id.example.com
listen: no-port-here
trusted_proxies: [10.0.0.0/8, not-an-ip]
tls: {cert: c.pem}
alerts: {webhooks: ["http://hooks.example.com/a"], secret_file: `+strconv.Quote(filepath.Join(t.TempDir(), "missing.key"))+`}
throttle: {per_account: -1}
admin: {bulk_read_limit: -5}
risk: {max_failures_ip: -2, impossible_travel_kmh: -900}
`)}
		s, err := resolve(&g, "", false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.serverConfig()
		var ue usageError
		if !errors.As(err, &ue) {
			t.Fatalf("serverConfig = %v, want a usage error", err)
		}
		for _, want := range []string{
			`issuer "http://id.example.com" uses plain http`,
			`listen address "no-port-here"`,
			`trusted_proxies: "not-an-ip"`,
			"tls: set both cert and key",
			`alerts.webhooks: "http://hooks.example.com/a" must be an https URL`,
			"alerts.secret_file:",
			"alerts: webhooks need a signing secret",
			"throttle.per_account: -1 is negative",
			"admin.bulk_read_limit: -5 is negative",
			"risk.max_failures_ip: -2 is negative",
			"risk.impossible_travel_kmh: -900 is negative",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not report %q:\n%v", want, err)
			}
		}
		if n := strings.Count(err.Error(), "\n  - "); n != 11 {
			t.Errorf("error lists %d problems, want 11:\n%v", n, err)
		}
	})

	t.Run("a short alert secret is refused when webhooks are set", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("KEYGATE_ALERT_SECRET", "too-short")
		g := globalOptions{configFile: writeConfig(t, "alerts: {webhooks: [https://hooks.example.com/a]}\n")}
		s, err := resolve(&g, "", false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.serverConfig(); err == nil || !strings.Contains(err.Error(), "at least 16 bytes") {
			t.Fatalf("serverConfig = %v, want the secret refused", err)
		}
	})

	t.Run("travel thresholds that are not finite numbers are refused", func(t *testing.T) {
		clearEnv(t)
		g := globalOptions{configFile: writeConfig(t, "risk: {impossible_travel_kmh: .nan, min_travel_km: .inf}\n")}
		s, err := resolve(&g, "", false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.serverConfig()
		for _, want := range []string{"risk.impossible_travel_kmh: NaN is not a finite number", "risk.min_travel_km: +Inf is not a finite number"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("serverConfig = %v, want %q", err, want)
			}
		}
	})
}

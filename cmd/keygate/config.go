package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.yaml.in/yaml/v3"

	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/mfa"
	"github.com/keygate/keygate/server/oidc"
)

type globalOptions struct {
	dataDir, issuer, configFile, database string
}

// duration reads "15m", "720h" from YAML.
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 15m or 720h", n.Line, n.Value)
	}
	if v < 0 {
		// A negative window would quietly disable what it bounds (a
		// throttle that never counts, a lifetime already over).
		return fmt.Errorf("line %d: %q is negative; leave the key out (or 0) for the default", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// fileConfig is the YAML configuration; every key is optional.
type fileConfig struct {
	Issuer         string   `yaml:"issuer"`
	Listen         string   `yaml:"listen"`
	DataDir        string   `yaml:"data_dir"`
	Database       string   `yaml:"database"`
	Dev            bool     `yaml:"dev"`
	TrustedProxies []string `yaml:"trusted_proxies"`
	TLS            struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	Tokens struct {
		AccessToken   duration `yaml:"access_token"`
		RefreshToken  duration `yaml:"refresh_token"`
		IDToken       duration `yaml:"id_token"`
		AuthorizeCode duration `yaml:"authorize_code"`
		RefreshGrace  duration `yaml:"refresh_grace"`
	} `yaml:"tokens"`
	Session struct {
		Lifetime duration `yaml:"lifetime"`
	} `yaml:"session"`
	Keys struct {
		Retention duration `yaml:"retention"`
	} `yaml:"keys"`
	Alerts struct {
		Webhooks   []string `yaml:"webhooks"`
		SecretFile string   `yaml:"secret_file"`
	} `yaml:"alerts"`
	Throttle struct {
		Window     duration `yaml:"window"`
		PerAccount int      `yaml:"per_account"`
		PerIP      int      `yaml:"per_ip"`
	} `yaml:"throttle"`
	Risk     riskFile  `yaml:"risk"`
	SMTP     *smtpFile `yaml:"smtp"` // nil: no email
	WebAuthn struct {
		Origins         []string `yaml:"origins"`
		MDSFile         string   `yaml:"mds_file"`
		MDSRootFile     string   `yaml:"mds_root_file"`
		HardwareAAGUIDs []string `yaml:"hardware_aaguids"`
	} `yaml:"webauthn"`
	Admin struct {
		FreshKeyTap    duration `yaml:"fresh_key_tap"`
		BulkReadLimit  int      `yaml:"bulk_read_limit"`
		BulkReadWindow duration `yaml:"bulk_read_window"`
	} `yaml:"admin"`
}

// negatives lists the numeric settings below zero: 0 means "the default",
// and below it nothing is meaningful. So are YAML's .nan and .inf, which
// the risk engine would quietly replace by its defaults.
func negatives[T int | float64](settings map[string]T) []string {
	var problems []string
	for key, v := range settings {
		switch {
		case v < 0:
			problems = append(problems, fmt.Sprintf("%s: %v is negative; leave the key out (or 0) for the default", key, v))
		case math.IsNaN(float64(v)) || math.IsInf(float64(v), 0):
			problems = append(problems, fmt.Sprintf("%s: %v is not a finite number", key, v))
		}
	}
	slices.Sort(problems)
	return problems
}

// loadFile reads the YAML file at path ("": none).
func loadFile(path string) (fileConfig, error) {
	if path == "" {
		return fileConfig{}, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return fileConfig{}, usagef("read config: %w", err)
	}
	return parseFile(path, raw)
}

// parseFile decodes the YAML of the file at path, refusing unknown keys so
// a typo is an error rather than a silently ignored setting.
func parseFile(path string, raw []byte) (fileConfig, error) {
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	// An empty file is an empty configuration.
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// yaml names the Go type an unknown key was not found in, which
			// for nested sections is an unreadable anonymous struct.
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				msgs[i] = unknownKey.ReplaceAllString(m, `$1: unknown key "$2"`)
			}
			return fc, usagef("config %s:\n  %s", path, strings.Join(msgs, "\n  "))
		}
		return fc, usagef("config %s: %w", path, err)
	}
	return fc, nil
}

var unknownKey = regexp.MustCompile(`^(line \d+): field (.*) not found in type .*$`)

// first returns the first non-empty value: flag, then env, then file, then default.
func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func pick[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// settings is the resolved configuration of one invocation.
type settings struct {
	dataDir  string
	database string // a PostgreSQL URL; empty for SQLite in the data directory
	issuer   string // empty if nothing set it (non-serve commands then ask the store)
	listen   string
	dev      bool
	file     fileConfig
}

func resolve(g *globalOptions, listenFlag string, devFlag bool) (settings, error) {
	fc, err := loadFile(first(g.configFile, os.Getenv("KEYGATE_CONFIG")))
	if err != nil {
		return settings{}, err
	}
	s := settings{
		dataDir:  first(g.dataDir, os.Getenv("KEYGATE_DATA_DIR"), fc.DataDir, "keygate-data"),
		database: first(g.database, os.Getenv("KEYGATE_DATABASE_URL"), fc.Database),
		issuer:   strings.TrimRight(first(g.issuer, os.Getenv("KEYGATE_ISSUER"), fc.Issuer), "/"),
		listen:   first(listenFlag, os.Getenv("KEYGATE_LISTEN"), fc.Listen, "127.0.0.1:8080"),
		dev:      devFlag || fc.Dev || os.Getenv("KEYGATE_DEV") == "1",
		file:     fc,
	}
	return s, nil
}

// serverConfig validates everything serve needs and reports all problems
// at once.
func (s settings) serverConfig() (server.Config, error) {
	fc := s.file
	var problems []string
	issuer := first(s.issuer, "http://localhost:8080")
	if err := validateIssuer(issuer, s.dev); err != nil {
		problems = append(problems, err.Error())
	}
	if _, _, err := net.SplitHostPort(s.listen); err != nil {
		problems = append(problems, fmt.Sprintf("listen address %q: %v", s.listen, err))
	}
	var proxies []netip.Prefix
	for _, p := range fc.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				problems = append(problems, fmt.Sprintf("trusted_proxies: %q is neither an IP nor a CIDR", p))
				continue
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		proxies = append(proxies, pfx)
	}
	if (fc.TLS.Cert == "") != (fc.TLS.Key == "") {
		problems = append(problems, "tls: set both cert and key, or neither")
	}
	for _, w := range fc.Alerts.Webhooks {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "https" && !(s.dev && u.Scheme == "http")) {
			problems = append(problems, fmt.Sprintf("alerts.webhooks: %q must be an https URL (plain http only with --dev)", w))
		}
	}
	var secret []byte
	if fc.Alerts.SecretFile != "" {
		b, err := os.ReadFile(fc.Alerts.SecretFile)
		if err != nil {
			problems = append(problems, fmt.Sprintf("alerts.secret_file: %v", err))
		}
		secret = bytes.TrimSpace(b)
	} else if env := os.Getenv("KEYGATE_ALERT_SECRET"); env != "" {
		secret = []byte(env)
	}
	if len(fc.Alerts.Webhooks) > 0 && len(secret) < 16 {
		problems = append(problems, "alerts: webhooks need a signing secret of at least 16 bytes (alerts.secret_file or KEYGATE_ALERT_SECRET)")
	}
	problems = append(problems, negatives(map[string]int{
		"throttle.per_account": fc.Throttle.PerAccount, "throttle.per_ip": fc.Throttle.PerIP,
		"admin.bulk_read_limit": fc.Admin.BulkReadLimit,
	})...)
	d := oidc.DefaultLifetimes
	lt := oidc.Lifetimes{
		AccessToken:   pick(time.Duration(fc.Tokens.AccessToken), d.AccessToken),
		RefreshToken:  pick(time.Duration(fc.Tokens.RefreshToken), d.RefreshToken),
		IDToken:       pick(time.Duration(fc.Tokens.IDToken), d.IDToken),
		AuthorizeCode: pick(time.Duration(fc.Tokens.AuthorizeCode), d.AuthorizeCode),
		RefreshGrace:  pick(time.Duration(fc.Tokens.RefreshGrace), d.RefreshGrace),
	}
	origins, hardware, md, wproblems := s.webauthnConfig()
	geoCfg, policy, rproblems := s.riskConfig()
	problems = append(problems, rproblems...)
	problems = append(problems, wproblems...)
	mailCfg, mproblems := s.mailConfig(true)
	problems = append(problems, mproblems...)
	if len(problems) > 0 {
		return server.Config{}, usagef("configuration:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return server.Config{
		Issuer:         issuer,
		Listen:         s.listen,
		TLSCert:        fc.TLS.Cert,
		TLSKey:         fc.TLS.Key,
		SecureCookies:  strings.HasPrefix(issuer, "https://"),
		TrustedProxies: proxies,
		Lifetimes:      lt,
		SessionTTL:     pick(time.Duration(fc.Session.Lifetime), 12*time.Hour),
		KeyRetention:   pick(time.Duration(fc.Keys.Retention), 48*time.Hour),
		AlertWebhooks:  fc.Alerts.Webhooks,
		AlertSecret:    secret,
		Throttle: server.ThrottleConfig{
			Window:     pick(time.Duration(fc.Throttle.Window), 15*time.Minute),
			PerAccount: pick(fc.Throttle.PerAccount, 5),
			PerIP:      pick(fc.Throttle.PerIP, 50),
		},
		WebAuthnOrigins:  origins,
		HardwareAAGUIDs:  hardware,
		WebAuthnMetadata: md,
		Geo:              geoCfg,
		Risk:             policy,
		Mail:             mailCfg,
		Admin: server.AdminConfig{
			FreshKeyTap:    time.Duration(fc.Admin.FreshKeyTap),
			BulkReadLimit:  fc.Admin.BulkReadLimit,
			BulkReadWindow: time.Duration(fc.Admin.BulkReadWindow),
		},
	}, nil
}

// webauthnConfig validates the webauthn section: extra origins, the FIDO
// metadata BLOB (read and verified now, so a bad file stops the start)
// and the phrh allow-list.
func (s settings) webauthnConfig() (origins []string, hardware []uuid.UUID, md *mfa.MDS, problems []string) {
	wc := s.file.WebAuthn
	for _, o := range wc.Origins {
		if err := validateOrigin(o, s.dev); err != nil {
			problems = append(problems, "webauthn.origins: "+err.Error())
			continue
		}
		origins = append(origins, strings.TrimRight(o, "/"))
	}
	for _, a := range wc.HardwareAAGUIDs {
		id, err := uuid.Parse(a)
		if err != nil {
			problems = append(problems, fmt.Sprintf("webauthn.hardware_aaguids: %q is not a UUID like cb69481e-8ff7-4039-93ec-0a2729a154a8", a))
			continue
		}
		hardware = append(hardware, id)
	}
	if wc.MDSFile == "" {
		if wc.MDSRootFile != "" {
			problems = append(problems, "webauthn.mds_root_file is set but webauthn.mds_file is not")
		}
		if len(wc.HardwareAAGUIDs) > 0 {
			problems = append(problems, "webauthn.hardware_aaguids needs webauthn.mds_file: without metadata no attestation is verified, so no key would count as hardware-bound")
		}
		return origins, hardware, nil, problems
	}
	blob, err := os.ReadFile(wc.MDSFile)
	if err != nil {
		problems = append(problems, fmt.Sprintf("webauthn.mds_file: %v", err))
	}
	var root []byte
	if wc.MDSRootFile != "" {
		if root, err = os.ReadFile(wc.MDSRootFile); err != nil {
			problems = append(problems, fmt.Sprintf("webauthn.mds_root_file: %v", err))
		}
	}
	if blob == nil || (wc.MDSRootFile != "" && root == nil) {
		return origins, hardware, nil, problems
	}
	if md, err = mfa.ParseMDS(blob, root); err != nil {
		problems = append(problems, fmt.Sprintf("webauthn.mds_file %s: %v", wc.MDSFile, err))
	}
	return origins, hardware, md, problems
}

// validateOrigin: a WebAuthn origin is a scheme and a host (and port),
// nothing else; plain http only for localhost unless --dev.
func validateOrigin(o string, dev bool) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must be an origin like https://id.example.com (scheme and host, no path)", o)
	}
	if u.Scheme == "http" && !dev {
		if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return fmt.Errorf("%q uses plain http on a non-localhost host; use https, or --dev for a test setup", o)
		}
	}
	return nil
}

// validateIssuer: an absolute http(s) URL without query or fragment; plain
// http only for localhost unless --dev says otherwise.
func validateIssuer(issuer string, dev bool) error {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("issuer %q must be an absolute http(s) URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q must not have a query or fragment", issuer)
	}
	if u.Scheme == "http" && !dev {
		h := u.Hostname()
		if h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return fmt.Errorf("issuer %q uses plain http on a non-localhost host; use https, or --dev for a test setup", issuer)
		}
	}
	return nil
}

package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/admin"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/geo"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/login"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/metrics"
	"github.com/keygate/keygate/server/mfa"
	"github.com/keygate/keygate/server/notice"
	"github.com/keygate/keygate/server/oidc"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/risk"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/throttle"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/web"
)

// Config is the server's typed configuration; cmd/keygate builds it from
// flags, environment and the YAML file.
type Config struct {
	Issuer         string // e.g. https://id.example.com, no trailing slash
	Listen         string
	TLSCert        string
	TLSKey         string
	SecureCookies  bool // false only for plain-HTTP development
	TrustedProxies []netip.Prefix
	Lifetimes      oidc.Lifetimes
	SessionTTL     time.Duration
	KeyRetention   time.Duration // how long retired signing keys stay published
	AlertWebhooks  []string
	AlertSecret    []byte
	MaxBodyBytes   int64
	Throttle       ThrottleConfig
	Admin          AdminConfig
	// WebAuthnOrigins are extra origins allowed to run ceremonies; the
	// issuer's origin always is. HardwareAAGUIDs is the phrh allow-list.
	WebAuthnOrigins []string
	HardwareAAGUIDs []uuid.UUID
	// WebAuthnMetadata is the verified FIDO metadata BLOB, or nil: it
	// names key models, verifies attestation (Attested, for phrh), and at
	// start New disables every key of a model it reports compromised.
	WebAuthnMetadata *mfa.MDS
	// Geo places client addresses (MMDB file, named networks); Risk is
	// the risk engine's policy.
	Geo  geo.Config
	Risk risk.Policy
	// Mail is the mail server email goes through (with defaults, checked);
	// nil: keygate sends no email and refuses to be asked to.
	Mail *mail.Config
}

// AdminConfig tunes the admin console and API; zero values take the
// admin package's defaults (a key tap within 5 minutes; 30 bulk reads per
// 10 minutes before an alert).
type AdminConfig struct {
	FreshKeyTap    time.Duration
	BulkReadLimit  int
	BulkReadWindow time.Duration
}

// ThrottleConfig bounds failed sign-in steps.
type ThrottleConfig struct {
	Window     time.Duration
	PerAccount int
	PerIP      int
}

// Server is keygate's HTTP service and its background work.
type Server struct {
	cfg     Config
	locator *geo.Locator
	oidc    *oidc.Handler
	store   storage.Store
	keyring *keys.Keyring
	audit   *audit.Recorder
	logger  *slog.Logger
	router  *httpx.Router
	handler http.Handler
	now     func() time.Time
	tls     *tls.Config // nil: plain HTTP
	// sendMail is the outbox's sender of email.
	sendMail func(context.Context, storage.OutboxMessage) error
}

// New builds every capability and mounts it.
func New(ctx context.Context, cfg Config, store storage.Store, master *keys.Master, logger *slog.Logger) (*Server, error) {
	now := time.Now
	// Whatever handler the logger has, lines carry the request id and
	// nothing a client sent is logged unbounded.
	logger = slog.New(httpx.NewLogHandler(logger.Handler()))
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	// Load the certificate now, not when Serve starts: a missing file or a
	// key that does not match must stop the start before serve announces
	// it is listening and issues an enrolment link.
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	if err := keys.EnsureSigningKeys(ctx, store, master, now()); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	keyring, err := keys.NewKeyring(ctx, store, master, cfg.KeyRetention, now)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	renderer, err := render.New(web.Templates(), logger)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	rec := audit.NewRecorder(store, logger, cfg.AlertWebhooks, now)
	sessions := session.NewStore(store, session.Config{Secure: cfg.SecureCookies, Lifetime: cfg.SessionTTL, Now: now})
	locator, err := geo.Open(cfg.Geo)
	if err != nil {
		return nil, fmt.Errorf("geolocation: %w", err)
	}
	if !locator.HasMMDB() {
		logger.InfoContext(ctx, "no MMDB file configured: location signals come from named networks only")
	}
	logMail(ctx, logger, cfg.Mail)
	if cfg.Risk == (risk.Policy{}) {
		cfg.Risk = risk.DefaultPolicy()
	}
	devices := session.NewDevices(master.Derive("device-cookie", 32), cfg.SecureCookies)
	limiter := &throttle.Limiter{DB: store, Window: cfg.Throttle.Window, PerAccount: cfg.Throttle.PerAccount, PerIP: cfg.Throttle.PerIP, Now: now}

	passkeys, err := mfa.NewPasskeys(mfa.WebAuthnConfig{
		Origins:         append([]string{origin(cfg.Issuer)}, cfg.WebAuthnOrigins...),
		HardwareAAGUIDs: cfg.HardwareAAGUIDs,
		Metadata:        cfg.WebAuthnMetadata,
	})
	if err != nil {
		// Browsers refuse WebAuthn for IP-address origins; serve without it.
		logger.WarnContext(ctx, "security keys and passkeys are disabled", "reason", err.Error())
		passkeys = nil
	}
	if md := cfg.WebAuthnMetadata; md != nil {
		logger.InfoContext(ctx, "FIDO metadata loaded", "number", md.Number(), "models", md.Len(),
			"next_update", md.NextUpdate().Format(time.DateOnly))
		if now().After(md.NextUpdate()) {
			logger.WarnContext(ctx, "FIDO metadata is past its next update: fetch a newer BLOB", "number", md.Number())
		}
		if skipped := md.Skipped(); len(skipped) > 0 {
			logger.WarnContext(ctx, "FIDO metadata entries that do not parse were skipped", "entries", skipped)
		}
		n, err := mfa.DisableCompromisedKeys(ctx, store, rec, md, now())
		if err != nil {
			return nil, fmt.Errorf("FIDO metadata: %w", err)
		}
		if n > 0 {
			logger.WarnContext(ctx, "keys of compromised models disabled", "keys", n)
		}
	}
	secretHasher := keys.NewSecretHasher(master.Derive("client-secret", 32))
	mailq := mailQueue(cfg.Mail, store, master, now)
	manager := &manage.Manager{Store: store, Audit: rec, Hasher: secretHasher, Issuer: cfg.Issuer, Actor: "system", Now: now,
		Mail: mailq}
	// Users are told of new-looking sign-ins and of changes to their
	// account, whoever makes them.
	notices := &notice.Notifier{Store: store, Mail: mailq, Issuer: cfg.Issuer, Now: now}
	rec.Notify(notices.Recorded)
	// The authorize endpoint and the sign-in pages hand flows to each other
	// in-process, not by redirects: a single sign-on, and a finished
	// sign-in, are answered with the app's code.
	var signIn *login.Handler
	oidcHandler, err := oidc.New(oidc.Deps{
		Issuer: cfg.Issuer, Store: store, Keys: keyring,
		SecretHasher: secretHasher,
		HMACSecret:   master.Derive("fosite-hmac", 32),
		Sessions:     sessions, Render: renderer, Audit: rec, Metrics: m, Logger: logger,
		Lifetimes: cfg.Lifetimes, Now: now,
		// An app's RP-initiated logout ends the session as keygate's own
		// sign-out does.
		SignOut: func(r *http.Request, userID, sid, clientID string) (bool, error) {
			return managerFor(manager, r, userID).SignOut(r.Context(), userID, sid, clientID)
		},
		Continue: func(w http.ResponseWriter, r *http.Request, browser *session.Session, flow storage.Flow) error {
			return signIn.Continue(w, r, browser, flow)
		},
	})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, locator: locator, oidc: oidcHandler, store: store, keyring: keyring, audit: rec, logger: logger, now: now, tls: tlsConfig,
		sendMail: mailSender(cfg.Mail, master, now)}
	r := httpx.NewRouter()
	r.Use(func(rt httpx.Route, h http.Handler) http.Handler { return m.Middleware(rt.Pattern, h) })
	r.Mount(oidcHandler)
	signIn = login.New(login.Deps{Store: store, Sessions: sessions, Render: renderer, Audit: rec,
		Metrics: m, Throttle: limiter, Locator: locator, Devices: devices, Risk: cfg.Risk, Notices: notices, Logger: logger, Now: now,
		Mail: mailq, Issuer: cfg.Issuer, HandBack: oidcHandler.HandBack,
		// Forgot password: a few links an hour per address, more per
		// network (an office shares one address).
		ResetThrottle: &throttle.Limiter{DB: store, Window: time.Hour, PerAccount: 3, PerIP: 30, Now: now},
		ResetPassword: func(r *http.Request, userID, passwordHash string) error {
			return managerFor(manager, r, userID).ResetPassword(r.Context(), userID, passwordHash)
		}})
	r.Mount(signIn)
	r.Mount(notice.NewHandler(notice.Deps{Store: store, Manager: manager, Render: renderer, Issuer: cfg.Issuer, Logger: logger, Now: now}))
	r.Mount(mfa.New(mfa.Deps{Store: store, Master: master, Passkeys: passkeys, RecoveryKey: master.Derive("recovery-code", 32),
		Issuer: issuerLabel(cfg.Issuer), Sessions: sessions, Render: renderer, Audit: rec, Metrics: m,
		Throttle: limiter, Logger: logger, Now: now}))
	// The admin console and API act through the same manager as the CLI;
	// each request acts as its administrator or service client.
	r.Mount(admin.New(admin.Deps{Store: store, Sessions: sessions, Render: renderer,
		Manager: manager,
		Tokens:  oidcHandler, Audit: rec, Logger: logger, Now: now,
		Freshness: cfg.Admin.FreshKeyTap, BulkReadLimit: cfg.Admin.BulkReadLimit, BulkReadWindow: cfg.Admin.BulkReadWindow}))
	r.Mount(operations{store: store, metrics: m})
	r.Handle(httpx.Route{Method: http.MethodGet, Pattern: "/static/", Guard: httpx.GuardPublic, Handler: staticFiles(web.Static())})
	s.router = r
	s.handler = httpx.Chain(r,
		httpx.Recover(logger),
		httpx.RequestID,
		httpx.ClientIP(httpx.ClientIPConfig{TrustedProxies: cfg.TrustedProxies}),
		httpx.AccessLog(logger),
		httpx.SecurityHeaders(httpx.SecurityConfig{HSTS: cfg.TLSCert != "" || isHTTPS(cfg.Issuer)}),
		httpx.BodyLimit(cfg.MaxBodyBytes),
	)
	return s, nil
}

// managerFor is m acting for actor from r's address and user agent.
func managerFor(m *manage.Manager, r *http.Request, actor string) *manage.Manager {
	ip := ""
	if a := httpx.ClientIPFrom(r.Context()); a.IsValid() {
		ip = a.String()
	}
	return m.As(actor, ip, r.UserAgent())
}

// Close releases what New opened (the MMDB file).
func (s *Server) Close() error { return s.locator.Close() }

// Handler is the whole HTTP surface, middleware included.
func (s *Server) Handler() http.Handler { return s.handler }

// Routes lists every mounted route, for tests that walk the surface.
func (s *Server) Routes() []httpx.Route { return s.router.Routes() }

// Serve accepts on ln until ctx ends, then drains in-flight requests.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		TLSConfig:         s.tls,
	}
	workers, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	go s.runWorkers(workers)

	errc := make(chan error, 1)
	go func() {
		if s.tls != nil {
			// The certificate is in TLSConfig (loaded by New).
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// Count the anonymous failures of the last, unfinished window too.
	if err := s.audit.FlushAnonymous(shutdown, true); err != nil {
		s.logger.ErrorContext(ctx, "audit anonymous failures", "err", err)
	}
	return nil
}

// origin is the scheme and host of the issuer: the only origin WebAuthn
// ceremonies are accepted from unless configured otherwise.
func origin(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return issuer
	}
	return u.Scheme + "://" + u.Host
}

func isHTTPS(issuer string) bool { return len(issuer) > 8 && issuer[:8] == "https://" }

// issuerLabel is what authenticator apps show beside the account name:
// "keygate" and the issuer's host, and its port if it has one. The key URI
// format forbids a colon in the issuer, so the port goes in parentheses.
func issuerLabel(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" {
		return "keygate"
	}
	// An IPv6 host has colons of its own.
	label := "keygate " + strings.ReplaceAll(u.Hostname(), ":", "-")
	if p := u.Port(); p != "" {
		label += " (" + p + ")"
	}
	return label
}

package main

import (
	"context"
	"errors"
	"fmt"
	goversion "go/version"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/login"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

func nowUTC() time.Time { return time.Now().UTC() }

func newServe(g *globalOptions) *cobra.Command {
	var listen, adminEmail, logLevel string
	var dev bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run keygate (zero-config: ./keygate-data, 127.0.0.1:8080, issuer http://localhost:8080)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := resolve(g, listen, dev)
			if err != nil {
				return err
			}
			cfg, err := s.serverConfig()
			if err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level: %v", err)
			}
			logger := slog.New(httpx.NewLogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
			return serve(cmd.Context(), s, cfg, first(adminEmail, os.Getenv("KEYGATE_ADMIN_EMAIL")), logger)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on (env KEYGATE_LISTEN; default 127.0.0.1:8080)")
	cmd.Flags().BoolVar(&dev, "dev", false, "allow a plain-HTTP issuer on a non-localhost host (testing only)")
	cmd.Flags().StringVar(&adminEmail, "admin-email", "", "email of the first administrator (env KEYGATE_ADMIN_EMAIL; default admin@<issuer host>)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// tuneGC trades memory for throughput unless the operator chose: under
// load most of a request's garbage is short-lived JSON, and a larger GC
// target raised introspection throughput by a third in load runs. A soft
// memory limit keeps that garbage in check (GOMEMLIMIT overrides it, e.g.
// for a deployment whose live heap is larger).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit(login.PasswordChecks()))
	}
}

// heapBase is the heap keygate needs beside password checks: its live
// data and a load's short-lived garbage between two collections.
const heapBase = 8 << 20

// memoryLimit is the soft limit for a process that runs at most checks
// password checks at once. Each holds argon2id's memory while it runs, and
// once it ends that memory is garbage until the next collection, so the
// limit leaves room for one more check's worth: the collector then runs
// about once per check, and cheaply, because argon2id's memory holds no
// pointers to mark (46 MiB on two cores, where one check runs at a time).
// With only the checks in flight and heapBase, or even half a check more,
// they alone keep the heap at the limit: the collector runs without pause, each allocating request must
// help it, freed memory goes back to the system only to be faulted in
// again, and sign-ins, and the enrolments that set passwords, crawl. The
// memory a pause in checks leaves is given back by login's releaser.
func memoryLimit(checks int) int64 {
	return heapBase + int64(checks+1)*login.PasswordCheckMemory
}

// patchedGo is the first Go release whose standard library has none of
// the vulnerabilities keygate's code reaches (govulncheck). go.mod's
// toolchain line asks for it, but a Go set to GOTOOLCHAIN=local builds with
// whatever it is, so serve says so rather than run on a known hole quietly.
const patchedGo = "go1.26.10"

// unpatchedGo is whether a Go release (as runtime.Version names it) is
// older than patchedGo; a development build is not judged.
func unpatchedGo(v string) bool {
	return goversion.IsValid(v) && goversion.Compare(v, patchedGo) < 0
}

func warnOldGo(logger *slog.Logger) {
	if v := runtime.Version(); unpatchedGo(v) {
		logger.Warn("built with a Go release whose standard library has known vulnerabilities; rebuild with GOTOOLCHAIN="+patchedGo,
			"go", v, "want", patchedGo)
	}
}

func serve(ctx context.Context, s settings, cfg server.Config, adminEmail string, logger *slog.Logger) error {
	tuneGC()
	warnOldGo(logger)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	store, master, err := openData(ctx, s)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.SetMeta(ctx, metaIssuer, cfg.Issuer); err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg, store, master, logger)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	s.issuer = cfg.Issuer
	if err := bootstrapAdmin(ctx, s, store, master, adminEmail, logger); err != nil {
		ln.Close()
		return err
	}
	logger.InfoContext(ctx, "keygate serving", "listen", ln.Addr().String(), "issuer", cfg.Issuer,
		"store", storeName(s), "version", version)
	fmt.Printf("keygate listening on %s (issuer %s, version %s)\n", ln.Addr(), cfg.Issuer, version)
	err = srv.Serve(ctx, ln)
	logger.Info("keygate stopped")
	return err
}

// bootstrapAdmin prints a one-time enrolment link while no administrator
// can sign in: on first start, and again on each start until one has
// finished enrolling.
func bootstrapAdmin(ctx context.Context, s settings, store storage.Store, master *keys.Master, email string, logger *slog.Logger) error {
	users, err := store.ListUsers(ctx)
	if err != nil {
		return err
	}
	var admin *storage.User
	for i, u := range users {
		if u.IsAdmin() && !u.Suspended() {
			if u.Enrolled() {
				return nil
			}
			admin = &users[i]
		}
	}
	m, err := manager(ctx, s, store, master, logger)
	if err != nil {
		return err
	}
	var nu manage.NewUser
	if admin != nil {
		nu, err = m.IssueEnrollment(ctx, admin.Email)
	} else {
		if email == "" {
			u, _ := url.Parse(s.issuer)
			email = "admin@" + u.Hostname()
		}
		nu, err = m.CreateUser(ctx, manage.UserSpec{Email: email, Name: "Administrator", Role: storage.RoleAdmin})
	}
	if err != nil {
		if errors.Is(err, manage.ErrInvalid) {
			return usageError{err}
		}
		return err
	}
	fmt.Printf("No administrator has enrolled yet. Enrol %s (valid until %s, single use):\n  %s\n",
		nu.User.Email, nu.ExpiresAt.Format(time.RFC3339), nu.EnrollmentURL)
	return nil
}

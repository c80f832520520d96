package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/notice"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/postgres"
	"github.com/keygate/keygate/storage/sqlite"
)

// dbFile is the SQLite database inside the data directory.
const dbFile = "keygate.db"

// openData opens the store and the master key: PostgreSQL when a database
// URL is set, else SQLite in the data directory (created and migrated on
// first use). The master key comes from KEYGATE_MASTER_KEY or the data
// directory, where it is created on first use.
func openData(ctx context.Context, s settings) (storage.Store, *keys.Master, error) {
	store, err := openStore(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	master, created, err := keys.LoadMaster(s.dataDir, os.Getenv("KEYGATE_MASTER_KEY"))
	if err == nil {
		err = checkMasterKey(ctx, store, master, created, s.dataDir)
	}
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, master, nil
}

func openStore(ctx context.Context, s settings) (storage.Store, error) {
	if s.database != "" {
		// A malformed URL is refused before anything is created.
		db, err := parseDatabaseURL(s.database)
		if err != nil {
			return nil, err
		}
		store, err := postgres.Open(ctx, db.dsn)
		if err != nil {
			return nil, db.openError(err)
		}
		return store, nil
	}
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return sqlite.Open(ctx, filepath.Join(s.dataDir, dbFile))
}

// storeName says which store s opens, for logs: never a DSN's password.
func storeName(s settings) string {
	if s.database == "" {
		return "sqlite " + filepath.Join(s.dataDir, dbFile)
	}
	db, err := parseDatabaseURL(s.database)
	if err != nil {
		return "postgres"
	}
	return "postgres " + db.where
}

// issuerOf is the issuer URLs are printed with: the configured one, or the
// one `serve` last recorded, or the zero-config default.
func issuerOf(ctx context.Context, s settings, store storage.Meta) (string, error) {
	if s.issuer != "" {
		return s.issuer, nil
	}
	v, err := store.GetMeta(ctx, metaIssuer)
	if errors.Is(err, storage.ErrNotFound) {
		return "http://localhost:8080", nil
	}
	return v, err
}

const metaIssuer = "issuer"

// manager acts for the command line; its audit events say "cli".
func manager(ctx context.Context, s settings, store storage.Store, master *keys.Master, logger *slog.Logger) (*manage.Manager, error) {
	issuer, err := issuerOf(ctx, s, store)
	if err != nil {
		return nil, err
	}
	rec := audit.NewRecorder(store, logger, s.file.Alerts.Webhooks, nil)
	// With a mail server, a change made here tells its user as one made
	// in the console does; keygate serve sends the mail.
	if c, problems := s.mailConfig(false); c != nil && len(problems) == 0 {
		q := &mail.Queue{Outbox: store, Sealer: master, Now: nowUTC}
		rec.Notify((&notice.Notifier{Store: store, Mail: q, Issuer: issuer, Now: nowUTC}).Recorded)
	}
	return &manage.Manager{
		Store:  store,
		Audit:  rec,
		Hasher: keys.NewSecretHasher(master.Derive("client-secret", 32)),
		Issuer: issuer,
		Actor:  "cli",
		Now:    nowUTC,
	}, nil
}

package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/keygate/keygate/storage"
)

// migrationFiles holds the schema history, one numbered SQL file per step
// (0001_initial.sql, 0002_….sql). Released files are never edited — a
// database that ran one never runs it again — so every change is a new
// file with the next number.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration = storage.Migration

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	return storage.ReadMigrations(migrationFiles, "migrations/*.sql")
}

// migrate brings the schema up to date. Each migration runs in its own
// write transaction together with the row recording it, so a failure leaves
// the database at the last complete version; re-running is a no-op.
//
// Inside a transaction PRAGMA foreign_keys cannot be switched off, so a
// migration that rebuilds a referenced table must keep every reference
// valid throughout.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return s.applyMigrations(ctx, ms)
}

// applyMigrations brings the schema up to the last of ms, which are
// migrations() or, in tests that build an older database, a prefix of it.
func (s *Store) applyMigrations(ctx context.Context, ms []migration) error {
	if _, err := s.wdb.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			applied_at INTEGER NOT NULL
		)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	current, err := s.schemaVersion(ctx, s.wdb)
	if err != nil {
		return err
	}
	if err := storage.CheckSchemaVersion(current, ms); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		err := s.InTx(ctx, func(ctx context.Context) error {
			q := s.w(ctx)
			// Another process may have migrated while this one waited
			// for the write lock; the transaction now sees its work.
			v, err := s.schemaVersion(ctx, q)
			if err != nil || v >= m.Version {
				return err
			}
			if _, err := q.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err = q.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				m.Version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
	}
	return nil
}

// schemaVersion is the highest migration recorded, 0 for a new database.
func (s *Store) schemaVersion(ctx context.Context, q querier) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("migrate: read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// SchemaVersion reports the schema version recorded in the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	return s.schemaVersion(ctx, s.r(ctx))
}

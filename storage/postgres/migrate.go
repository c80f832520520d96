package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/storage"
)

// migrationFiles holds the schema history, one numbered SQL file per step,
// numbered as storage/sqlite's are so that a schema version means the same
// on both backends. Released files are never edited — a database that ran
// one never runs it again — so every change is a new file with the next
// number.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration = storage.Migration

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	return storage.ReadMigrations(migrationFiles, "migrations/*.sql")
}

// migrationLock is the key of the transaction-level advisory lock every
// migration transaction takes first (pg_advisory_xact_lock): processes
// that start at once queue on it, and each finds the work of those before
// it done. Advisory locks are per database; the key is keygate's own, so
// another application's locks in the same database cannot collide with it
// by accident ("kg" "mi" in ASCII).
const migrationLock int64 = 0x6b67_6d69

// migrate brings the schema up to date (migrations()).
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return s.applyMigrations(ctx, ms)
}

// applyMigrations brings the schema up to the last of ms, which are
// migrations() or, in tests that build an older database, a prefix of it.
//
// Each migration runs in its own transaction, together with the row
// recording it, so a failure leaves the database at the last complete
// version; PostgreSQL's DDL is transactional, so a failed migration leaves
// no half-made table behind. Every one of these transactions first takes
// the migration lock and reads the version again under it, so of several
// processes starting at once exactly one applies each migration and the
// others see it applied. The first also refuses a database whose schema
// is newer than ms: this binary would not know how to read it.
func (s *Store) applyMigrations(ctx context.Context, ms []migration) error {
	for {
		done := false
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `
				CREATE TABLE IF NOT EXISTS schema_migrations (
					version    integer     NOT NULL PRIMARY KEY,
					applied_at timestamptz NOT NULL DEFAULT now()
				)`); err != nil {
				return err
			}
			current, err := schemaVersion(ctx, tx)
			if err != nil {
				return err
			}
			if err := storage.CheckSchemaVersion(current, ms); err != nil {
				return err
			}
			if current == len(ms) {
				done = true
				return nil
			}
			m := ms[current]
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply %s: %w", m.Name, err)
			}
			_, err = tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if done {
			return nil
		}
	}
}

// schemaVersion is the highest migration recorded, 0 for a new database.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// SchemaVersion reports the schema version recorded in the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	return schemaVersion(ctx, s.q(ctx))
}

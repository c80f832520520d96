package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/internal/clientcache"
)

// Store is a storage.Store on one PostgreSQL database (or one schema of
// it, named by the DSN's search_path).
type Store struct {
	pool *pgxpool.Pool
	// schema is where the store's tables are (current_schema()), which
	// its change notices name (changes.go).
	schema string
	// clients caches client reads outside transactions (see GetClient);
	// changes hears of client writes anywhere and drops them from it.
	clients *clientcache.Cache
	changes *listener
	// connConfig makes the connections that are not the pool's: the
	// listener's and RunExclusive's.
	connConfig *pgx.ConnConfig
}

var _ storage.Store = (*Store)(nil)

// Open connects to the PostgreSQL database dsn names and brings its schema
// up to date. dsn is a URL (postgres://user@host/db?sslmode=…) or a
// key=value string, as libpq takes; pool settings (pool_max_conns, …) may
// be given in it too, and an unknown key such as search_path is sent to
// the server as a run-time parameter.
//
// Open sets up a connection pool whose sessions all run in UTC, then
// applies, one transaction each, the embedded migrations the database has
// not run yet; several processes may open one database at once (see
// migrate.go). It refuses a database whose schema is newer than this
// binary's. The pool is closed by Close.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig is Open for a caller that sets pool or connection options in
// code, a tracer of the statements say (the benchmarks count round trips
// with one).
func OpenConfig(ctx context.Context, cfg *pgxpool.Config) (*Store, error) {
	// Times travel as timestamptz, which carries its own offset, so the
	// session zone changes no value; UTC keeps what psql shows an
	// operator in step with what keygate logs.
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&s.schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	// Suspended until the listener listens.
	s.clients = clientcache.New(clientCacheTTL, true)
	s.connConfig = cfg.ConnConfig.Copy()
	s.changes = startListener(s.connConfig, s.schema, s.clients, listenPing)
	return s, nil
}

// Close stops listening for changes and closes the pool; it waits for
// connections in use to be returned.
func (s *Store) Close() error {
	s.changes.close()
	s.pool.Close()
	return nil
}

// ErrBackup is Backup's answer: a PostgreSQL database is backed up with
// PostgreSQL's own tools.
var ErrBackup = errors.New("a PostgreSQL store is backed up with PostgreSQL's own tools: use pg_dump (or continuous archiving with pg_basebackup), not keygate backup")

// Backup refuses: see ErrBackup. pg_dump takes a consistent snapshot while
// keygate keeps running, restores into any PostgreSQL of the same or a
// newer major version, and keeps the audit chain as it is.
func (s *Store) Backup(ctx context.Context, path string) error {
	return fmt.Errorf("backup to %s: %w", path, ErrBackup)
}

// Package pgtest finds a PostgreSQL server for tests and gives each test a
// schema or a database of its own on it, dropped when the test ends.
//
// The server is the one whose DSN is in KEYGATE_TEST_POSTGRES (a role that
// may create databases), as ./scripts/test.sh sets it. Without it, the
// first test that needs one starts a throwaway cluster (initdb under
// /usr/lib/postgresql/*/bin, as the postgres user when running as root,
// listening on a socket in a temporary directory), which Main stops and
// removes when the tests are done. Without PostgreSQL installed the test
// fails, saying how to install it: a PostgreSQL test never skips.
//
// A test gets a schema of its own (Schema) in one database per test
// binary, named by the DSN's search_path, or when it needs a whole
// database, a database of its own (Empty). A new schema, migrated by
// storage/postgres.Open, costs about 120 ms a test here, against 175 for
// a database cloned from a migrated template (CREATE DATABASE … TEMPLATE
// … STRATEGY FILE_COPY, which also makes the server checkpoint, slower
// still on a server with fsync on).
//
// It is a test helper: only _test.go files may import it. It imports no
// keygate package, so that storage/postgres's own tests can use it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvDSN names the environment variable holding the test server's DSN.
const EnvDSN = "KEYGATE_TEST_POSTGRES"

// server is the process's test server, found or started once.
var server struct {
	once    sync.Once
	dsn     string
	err     error
	cluster *cluster // nil when the DSN came from EnvDSN

	mu   sync.Mutex
	db   string        // the database Schema makes schemas in, once made
	pool *pgxpool.Pool // connections to db
}

func serverDSN() (string, error) {
	server.once.Do(func() {
		if dsn := os.Getenv(EnvDSN); dsn != "" {
			server.dsn = dsn
			return
		}
		c, err := startCluster()
		if err != nil {
			server.err = fmt.Errorf("pgtest: %w", err)
			return
		}
		server.cluster, server.dsn = c, c.dsn()
	})
	return server.dsn, server.err
}

// Main runs the tests, then drops the database Schema made its schemas in
// and stops the cluster this process started, if any, and exits with the
// tests' code. A package whose tests use pgtest calls it from TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main for a TestMain with cleaning up of its own to do after the
// tests: it returns the exit code instead of exiting.
func Run(m *testing.M) int {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func shutdown() error {
	server.mu.Lock()
	defer server.mu.Unlock()
	var errs []error
	if server.pool != nil {
		server.pool.Close()
	}
	if server.db != "" {
		if err := execSQL(context.Background(), server.dsn, `DROP DATABASE IF EXISTS `+pgx.Identifier{server.db}.Sanitize()+` WITH (FORCE)`); err != nil {
			errs = append(errs, err)
		}
	}
	if server.cluster != nil {
		if err := server.cluster.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pgtest: cleaning up: %v", errs)
	}
	return nil
}

// Empty returns the DSN of a new, empty database, dropped when t ends.
func Empty(t testing.TB) string {
	t.Helper()
	dsn, err := serverDSN()
	if err != nil {
		t.Fatal(err)
	}
	name := newName("keygate_test")
	if err := execSQL(t.Context(), dsn, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// FORCE ends connections a failed test left open.
		if err := execSQL(context.Background(), dsn, `DROP DATABASE `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Error(err)
		}
	})
	return WithDatabase(dsn, name)
}

// Schema returns the DSN of a new, empty schema, which the DSN's
// search_path names, so everything a store creates and reads through it
// is the schema's own; the schema is dropped when t ends.
func Schema(t testing.TB) string {
	t.Helper()
	db, pool, err := schemaDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	name := newName("t")
	if _, err := pool.Exec(t.Context(), `CREATE SCHEMA `+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), `DROP SCHEMA `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return withSearchPath(WithDatabase(server.dsn, db), name)
}

// schemaDatabase returns the database Schema makes schemas in, made on
// first use, and a pool of connections to it.
func schemaDatabase(ctx context.Context) (string, *pgxpool.Pool, error) {
	dsn, err := serverDSN()
	if err != nil {
		return "", nil, err
	}
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.pool != nil {
		return server.db, server.pool, nil
	}
	db := newName("keygate_test")
	if err := execSQL(ctx, dsn, `CREATE DATABASE `+pgx.Identifier{db}.Sanitize()); err != nil {
		return "", nil, err
	}
	server.db = db // dropped by Main from now on
	pool, err := pgxpool.New(context.WithoutCancel(ctx), WithDatabase(dsn, db))
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: %w", err)
	}
	server.pool = pool
	return db, pool, nil
}

// execSQL runs one statement on its own connection to dsn.
func execSQL(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}

// newName is a database name no other test or process uses.
func newName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("%s_%d_%s", prefix, os.Getpid(), hex.EncodeToString(b))
}

// WithDatabase returns dsn naming database db instead: in a URL its path,
// in a key=value string a dbname key added at the end (a later key wins).
func WithDatabase(dsn, db string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path = "/" + db
			return u.String()
		}
	}
	return dsn + " dbname=" + db
}

// withSearchPath returns dsn with search_path set to schema, which pgx
// sends to the server as a run-time parameter.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// Package pgtest finds a PostgreSQL server for tests and gives each test a
// database of its own on it, dropped when the test ends.
//
// The server is the one whose DSN is in KEYGATE_TEST_POSTGRES (a role that
// may create databases), as ./scripts/test.sh sets it. Without it, the
// first test that needs one starts a throwaway cluster (initdb under
// /usr/lib/postgresql/*/bin, as the postgres user when running as root,
// listening on a socket in a temporary directory), which Main stops and
// removes when the tests are done. Without PostgreSQL installed the test
// fails, saying how to install it: a PostgreSQL test never skips.
//
// A test's database is cloned from a template that a prepare function
// (migrations, say) filled once per test binary: CREATE DATABASE …
// TEMPLATE copies it in milliseconds, where migrating each test's database
// would take longer.
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
)

// EnvDSN names the environment variable holding the test server's DSN.
const EnvDSN = "KEYGATE_TEST_POSTGRES"

// server is the process's test server, found or started once.
var server struct {
	once    sync.Once
	dsn     string
	err     error
	cluster *cluster // nil when the DSN came from EnvDSN
	// strategy is the CREATE DATABASE clause for copying a template.
	strategy string

	mu        sync.Mutex
	templates map[string]string // prepare key -> template database
}

func serverDSN() (string, error) {
	server.once.Do(func() {
		if dsn := os.Getenv(EnvDSN); dsn != "" {
			server.dsn = dsn
		} else {
			c, err := startCluster()
			if err != nil {
				server.err = fmt.Errorf("pgtest: %w", err)
				return
			}
			server.cluster, server.dsn = c, c.dsn()
		}
		server.err = probe()
	})
	return server.dsn, server.err
}

// probe reads the server's version: STRATEGY is PostgreSQL 15's.
func probe() error {
	conn, err := pgx.Connect(context.Background(), server.dsn)
	if err != nil {
		return fmt.Errorf("pgtest: connecting to the test server: %w", err)
	}
	defer conn.Close(context.Background())
	var v int
	if err := conn.QueryRow(context.Background(), `SELECT current_setting('server_version_num')::int`).Scan(&v); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if v >= 150000 {
		server.strategy = ` STRATEGY FILE_COPY`
	}
	return nil
}

// Main runs the tests, then drops the templates and stops the cluster this
// process started, if any, and exits with the tests' code. A package whose
// tests use pgtest calls it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func shutdown() error {
	server.mu.Lock()
	defer server.mu.Unlock()
	var errs []error
	if server.dsn != "" {
		for _, tpl := range server.templates {
			if err := execSQL(context.Background(), server.dsn, `DROP DATABASE IF EXISTS `+pgx.Identifier{tpl}.Sanitize()+` WITH (FORCE)`); err != nil {
				errs = append(errs, err)
			}
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
	return create(t, "")
}

// Fresh returns the DSN of a new database cloned from a template that
// prepare filled once per test binary (for each key), dropped when t ends.
// prepare gets the template's DSN and must leave no connection open to it.
func Fresh(t testing.TB, key string, prepare func(ctx context.Context, dsn string) error) string {
	t.Helper()
	tpl, err := template(t.Context(), key, prepare)
	if err != nil {
		t.Fatal(err)
	}
	return create(t, tpl)
}

// template returns the template database for key, made on first use.
func template(ctx context.Context, key string, prepare func(ctx context.Context, dsn string) error) (string, error) {
	dsn, err := serverDSN()
	if err != nil {
		return "", err
	}
	server.mu.Lock()
	defer server.mu.Unlock()
	if tpl, ok := server.templates[key]; ok {
		return tpl, nil
	}
	tpl := newName("keygate_tpl")
	if err := execSQL(ctx, dsn, `CREATE DATABASE `+pgx.Identifier{tpl}.Sanitize()); err != nil {
		return "", err
	}
	if server.templates == nil {
		server.templates = map[string]string{}
	}
	server.templates[key] = tpl // dropped by Main even if prepare fails
	if err := prepare(ctx, WithDatabase(dsn, tpl)); err != nil {
		return "", fmt.Errorf("pgtest: preparing template %s: %w", key, err)
	}
	return tpl, nil
}

// create makes a new database (from template tpl, unless "") and drops it
// when t ends, and returns its DSN.
func create(t testing.TB, tpl string) string {
	t.Helper()
	dsn, err := serverDSN()
	if err != nil {
		t.Fatal(err)
	}
	name := newName("keygate_test")
	q := `CREATE DATABASE ` + pgx.Identifier{name}.Sanitize()
	if tpl != "" {
		// FILE_COPY copies the template's files (PostgreSQL 15 made
		// WAL_LOG, which writes every page to the WAL, the default): about
		// 80 ms against 220 for a migrated template on the throwaway
		// cluster, which runs without fsync.
		q += ` TEMPLATE ` + pgx.Identifier{tpl}.Sanitize() + server.strategy
	}
	if err := execSQL(t.Context(), dsn, q); err != nil {
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

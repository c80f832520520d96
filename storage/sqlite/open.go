package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/internal/clientcache"
)

// Store is a storage.Store on one SQLite file.
type Store struct {
	// wdb is the single write connection; rdb is the query-only pool for
	// reads outside a transaction. See the package comment.
	wdb *sql.DB
	rdb *sql.DB
	// path is the database file, for Backup's own connection.
	path string
	// clients caches client reads outside transactions (see GetClient).
	clients *clientcache.Cache
	// group lets concurrent InTx calls share a commit (tx.go).
	group groupCommit
	// auditTail guesses the newest audit event (audit.go).
	auditTail auditTail
	// checkpoints copies the WAL into the file in the background, after
	// writes: w sets wrote.
	checkpoints *checkpointer
	wrote       atomic.Bool
}

var _ storage.Store = (*Store)(nil)

const (
	// busyTimeoutMS is how long a connection waits for another process's
	// lock before failing with SQLITE_BUSY.
	busyTimeoutMS = 5000
	// stmtCacheSize is the number of prepared statements each connection
	// keeps; it is above the number of distinct statements in the package so
	// that none is ever evicted and recompiled.
	stmtCacheSize = 128
	// synchronous is FULL on every connection: a commit returns only after
	// the WAL is on disk, so an acknowledged write — a suspension, a
	// revoked key, an audit event an administrator saw succeed — survives
	// a power cut. NORMAL would save that fsync and could lose the last
	// commits; group commit pays one fsync for a whole group instead.
	synchronous = "FULL"
)

// Open opens the database at path, creating it if it does not exist, and
// applies any migrations it has not run yet. It refuses a database written
// by a newer keygate.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		// The two pools must share one file, which an in-memory database is
		// not; and URIs would bypass the parameters set here.
		return nil, fmt.Errorf("open database: %q is not a file path", path)
	}
	if strings.Contains(path, "?") {
		// The driver splits its DSN at '?', so such a path cannot be passed.
		return nil, fmt.Errorf("open database: path %q contains '?'", path)
	}

	// The file holds sealed keys and credential hashes: create it
	// readable by its owner only. SQLite gives the -wal and -shm files it
	// creates the same permissions as the database file.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("open database: %w", err)
	}

	// Every connection gets synchronous: the checkpointer's and a reader's
	// too, as the last connection to close checkpoints the WAL.
	common := url.Values{
		"_busy_timeout":    {fmt.Sprint(busyTimeoutMS)},
		"_stmt_cache_size": {fmt.Sprint(stmtCacheSize)},
		"_synchronous":     {synchronous},
	}

	// The journal mode is a property of the file; setting it on the writer
	// is enough, and the writer connects first so that it is set before any
	// reader opens.
	wq := cloneValues(common)
	wq.Set("_journal_mode", "WAL")
	wq.Set("_foreign_keys", "on")
	wq.Set("_txlock", "immediate")
	wdb, err := sql.Open("sqlite3", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)

	s := &Store{wdb: wdb, path: path, clients: clientcache.New(clientCacheTTL, false)}
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		wdb.Close()
		return nil, err
	}
	// The writer is the pool's only connection, and stays open.
	if _, err := wdb.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", writerCheckpointPages)); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}

	// query_only rather than mode=ro: a read-only connection cannot create
	// the WAL's shared-memory file, so it depends on the writer having done
	// so; query_only connections open like any other but refuse to write.
	rq := cloneValues(common)
	rq.Set("_query_only", "on")
	rdb, err := sql.Open("sqlite3", path+"?"+rq.Encode())
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	rdb.SetConnMaxLifetime(0)
	rdb.SetConnMaxIdleTime(0)
	if err := rdb.PingContext(ctx); err != nil {
		rdb.Close()
		wdb.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	s.rdb = rdb

	cdb, err := sql.Open("sqlite3", path+"?"+common.Encode())
	if err != nil {
		rdb.Close()
		wdb.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	cdb.SetMaxOpenConns(1)
	cdb.SetConnMaxLifetime(0)
	cdb.SetConnMaxIdleTime(0)
	s.checkpoints = startCheckpointer(cdb, &s.wrote)
	return s, nil
}

// Close stops the checkpointer and closes the pools. Transactions still
// open are rolled back by SQLite when their connection closes.
func (s *Store) Close() error {
	return errors.Join(s.checkpoints.close(), s.rdb.Close(), s.wdb.Close())
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

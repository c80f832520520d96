package storecopy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	_ "github.com/mattn/go-sqlite3" // the source's driver, registered as "sqlite3"

	"github.com/keygate/keygate/storage/postgres"
	"github.com/keygate/keygate/storage/sqlite"
)

var (
	// ErrNoSource: there is no SQLite database to copy.
	ErrNoSource = errors.New("no SQLite store")
	// ErrNotEmpty: the target holds rows already. The copy only fills an
	// empty database, so it never mixes two stores' rows.
	ErrNotEmpty = errors.New("the PostgreSQL database is not empty: copy into a new, empty database (or schema)")
	// ErrSchemaVersion: the target has run other migrations than the
	// source.
	ErrSchemaVersion = errors.New("the PostgreSQL database is at another schema version than the SQLite store")
	// ErrSchemaMismatch: a table or column does not line up between the
	// backends; see matchSchemas.
	ErrSchemaMismatch = errors.New("the SQLite and PostgreSQL schemas do not line up")
	// ErrAuditChain: the source's audit log does not verify, so neither
	// would the copy's.
	ErrAuditChain = errors.New("the SQLite store's audit log does not verify (keygate audit verify says where); the copy would not either")
)

// Result is what a copy wrote.
type Result struct {
	SchemaVersion int
	Tables        []TableRows // in the order copied
	AuditEvents   int         // audit events copied, their chain verified on the way
}

// TableRows is the number of rows copied into one table.
type TableRows struct {
	Table string
	Rows  int64
}

// Copy copies the keygate SQLite database at sqlitePath into the
// PostgreSQL database dsn names, which must be empty: either new, or
// migrated to the same schema version and holding no rows. It brings the
// source's schema up to this keygate's first, as every command does. See
// the package comment.
func Copy(ctx context.Context, sqlitePath, dsn string) (Result, error) {
	if _, err := os.Stat(sqlitePath); errors.Is(err, fs.ErrNotExist) {
		return Result{}, fmt.Errorf("%w at %s", ErrNoSource, sqlitePath)
	} else if err != nil {
		return Result{}, err
	}
	version, err := prepareSource(ctx, sqlitePath)
	if err != nil {
		return Result{}, err
	}
	if err := prepareTarget(ctx, dsn, version); err != nil {
		return Result{}, err
	}

	src, err := sql.Open("sqlite3", sqlitePath+"?"+url.Values{
		"_query_only":   {"on"},
		"_busy_timeout": {"5000"},
	}.Encode())
	if err != nil {
		return Result{}, fmt.Errorf("open the SQLite store: %w", err)
	}
	defer src.Close()
	// One read transaction is one snapshot: it begins at its first read.
	srcTx, err := src.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Result{}, fmt.Errorf("read the SQLite store: %w", err)
	}
	defer srcTx.Rollback()

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return Result{}, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	res := Result{SchemaVersion: version}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		tables, err := copyAll(ctx, srcTx, tx, version)
		res.Tables = tables
		return err
	})
	if err != nil {
		return Result{}, err
	}
	for _, tr := range res.Tables {
		if tr.Table == auditTable {
			res.AuditEvents = int(tr.Rows)
		}
	}
	return res, nil
}

// prepareSource brings the source's schema up to this keygate's, as any
// command opening it does, and returns its version.
func prepareSource(ctx context.Context, path string) (int, error) {
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	return st.SchemaVersion(ctx)
}

// prepareTarget migrates a new target to version and checks that one
// migrated before is at version. It reads the version before migrating:
// a target at another version is refused as it is, not changed first.
func prepareTarget(ctx context.Context, dsn string, version int) error {
	current, err := targetVersion(ctx, dsn)
	if err != nil {
		return err
	}
	if current == 0 {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			return err
		}
		current, err = st.SchemaVersion(ctx)
		st.Close()
		if err != nil {
			return err
		}
	}
	if current != version {
		return fmt.Errorf("%w: PostgreSQL is at version %d, SQLite at %d", ErrSchemaVersion, current, version)
	}
	return nil
}

// targetVersion is the schema version of the target's database, 0 when
// keygate has never run on it.
func targetVersion(ctx context.Context, dsn string) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var migrated bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables
		WHERE schemaname = current_schema() AND tablename = 'schema_migrations')`).Scan(&migrated); err != nil {
		return 0, fmt.Errorf("read PostgreSQL's schema version: %w", err)
	}
	if !migrated {
		return 0, nil
	}
	var v int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read PostgreSQL's schema version: %w", err)
	}
	return v, nil
}

// copyAll copies every table from the source snapshot into the target
// transaction, after locking the target's tables and checking that they
// are empty and line up with the source's.
func copyAll(ctx context.Context, src *sql.Tx, tx pgx.Tx, version int) ([]TableRows, error) {
	var srcVersion int
	if err := src.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&srcVersion); err != nil {
		return nil, fmt.Errorf("read the SQLite store: %w", err)
	}
	if srcVersion != version {
		return nil, fmt.Errorf("%w: SQLite moved to version %d during the copy", ErrSchemaVersion, srcVersion)
	}
	tables, err := readPostgresSchema(ctx, tx)
	if err != nil {
		return nil, err
	}
	lite, err := readSQLiteSchema(ctx, src)
	if err != nil {
		return nil, err
	}
	if err := matchSchemas(tables, lite); err != nil {
		return nil, err
	}
	if err := lockEmpty(ctx, tx, tables); err != nil {
		return nil, err
	}
	counts := make([]TableRows, 0, len(tables))
	for _, t := range tables {
		n, err := copyTable(ctx, src, tx, t)
		if err != nil {
			return nil, err
		}
		if err := advanceIdentities(ctx, src, tx, t); err != nil {
			return nil, err
		}
		counts = append(counts, TableRows{Table: t.name, Rows: n})
	}
	return counts, nil
}

// lockEmpty locks the target's tables against writers until the copy
// commits, then checks that they hold no rows.
func lockEmpty(ctx context.Context, tx pgx.Tx, tables []table) error {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = pgx.Identifier{t.name}.Sanitize()
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock the PostgreSQL tables: %w", err)
	}
	var full []string
	for i, t := range tables {
		var hasRows bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+names[i]+`)`).Scan(&hasRows); err != nil {
			return fmt.Errorf("read table %s: %w", t.name, err)
		}
		if hasRows {
			full = append(full, t.name)
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("%w (rows in %s)", ErrNotEmpty, strings.Join(full, ", "))
	}
	return nil
}

// copyTable streams one table from the source into the target with COPY,
// in primary key order (the audit chain's trigger needs its events in
// sequence), converting each value or stopping at the first it cannot.
func copyTable(ctx context.Context, src *sql.Tx, tx pgx.Tx, t table) (int64, error) {
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = sqliteIdent(c.name)
	}
	order := "rowid"
	if len(t.key) > 0 {
		keys := make([]string, len(t.key))
		for i, k := range t.key {
			keys[i] = sqliteIdent(k)
		}
		order = strings.Join(keys, ", ")
	}
	rows, err := src.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+sqliteIdent(t.name)+` ORDER BY `+order)
	if err != nil {
		return 0, fmt.Errorf("read table %s: %w", t.name, err)
	}
	defer rows.Close()

	keyAt := make([]int, len(t.key)) // where each key column is in a row
	for i, k := range t.key {
		for j, c := range t.columns {
			if c.name == k {
				keyAt[i] = j
			}
		}
	}
	var chain *chainCheck
	if t.name == auditTable {
		if chain, err = newChainCheck(t); err != nil {
			return 0, err
		}
	}
	raw := make([]any, len(t.columns))
	dest := make([]any, len(t.columns))
	for i := range raw {
		dest[i] = &raw[i]
	}
	var position int64
	next := func() ([]any, error) {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read table %s: %w", t.name, err)
		}
		position++
		out := make([]any, len(t.columns))
		for i, c := range t.columns {
			v, reason := convert(c, raw[i])
			if reason != "" {
				key := make([]any, len(keyAt))
				for j, at := range keyAt {
					key[j] = raw[at]
				}
				return nil, &BadValueError{Table: t.name, Row: rowName(t, key, position), Column: c.name, Reason: reason}
			}
			out[i] = v
		}
		if chain != nil {
			if err := chain.check(out); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = c.name
	}
	var resume func(int64, []byte) error
	if chain != nil {
		if resume, err = suspendLinking(ctx, tx); err != nil {
			return 0, err
		}
	}
	rs := &rowSource{rows: rows, next: next}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, names, rs)
	if err == nil && resume != nil {
		err = resume(chain.seq, chain.hash)
	}
	if err != nil {
		// pgx ends the COPY with the source's error as text; the error
		// itself says more.
		if rs.err != nil {
			return 0, rs.err
		}
		return 0, fmt.Errorf("copy table %s: %w", t.name, err)
	}
	return n, nil
}

// rowSource is a pgx.CopyFromSource over SQLite rows.
type rowSource struct {
	rows   *sql.Rows
	next   func() ([]any, error)
	values []any
	err    error
}

func (s *rowSource) Next() bool {
	if s.err != nil || !s.rows.Next() {
		return false
	}
	s.values, s.err = s.next()
	return true
}

func (s *rowSource) Values() ([]any, error) { return s.values, s.err }

func (s *rowSource) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.rows.Err()
}

// advanceIdentities moves each identity column's sequence past the ids
// copied into it, and past the ids SQLite ever gave out (AUTOINCREMENT
// never reuses one, even after its row is gone), so the next row written
// on PostgreSQL takes a fresh id.
func advanceIdentities(ctx context.Context, src *sql.Tx, tx pgx.Tx, t table) error {
	for _, c := range t.columns {
		if !c.identity {
			continue
		}
		var last int64
		err := src.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = ?`, t.name).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read table %s's last id: %w", t.name, err)
		}
		var copied int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(`+pgx.Identifier{c.name}.Sanitize()+`), 0) FROM `+pgx.Identifier{t.name}.Sanitize()).Scan(&copied); err != nil {
			return fmt.Errorf("read table %s: %w", t.name, err)
		}
		if last = max(last, copied); last == 0 {
			continue // nothing given out yet: the sequence starts at 1
		}
		if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, $2), $3)`,
			pgx.Identifier{t.name}.Sanitize(), c.name, last); err != nil {
			return fmt.Errorf("set table %s's next id: %w", t.name, err)
		}
	}
	return nil
}

// sqliteIdent quotes a name for SQLite.
func sqliteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

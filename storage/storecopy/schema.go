package storecopy

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// notCopied are tables each backend keeps for itself: its migration
// record (the target has run the same migrations), and PostgreSQL's audit
// chain head, which its trigger moves as the events arrive.
var notCopied = []string{"schema_migrations", "audit_head"}

// column is one column of a table as both backends declare it.
type column struct {
	name     string
	pgType   string // PostgreSQL's udt_name: text, bytea, bool, int4, int8, float8, timestamptz, _text
	nullable bool   // in PostgreSQL
	identity bool   // an identity column in PostgreSQL, whose sequence is set after the copy
}

// table is one table to copy.
type table struct {
	name    string
	columns []column
	key     []string // the primary key's columns, which name a row in errors; none: its position
}

// sqliteTypes are the SQLite column types each PostgreSQL type is copied
// from.
var sqliteTypes = map[string]string{
	"text":        "TEXT",
	"bytea":       "BLOB",
	"bool":        "INTEGER",
	"int4":        "INTEGER",
	"int8":        "INTEGER",
	"float8":      "REAL",
	"timestamptz": "INTEGER",
	"_text":       "TEXT",
}

// readPostgresSchema reads the tables of the target's schema (the first of
// its search_path), in an order that copies every table after the tables
// its foreign keys refer to.
func readPostgresSchema(ctx context.Context, tx pgx.Tx) ([]table, error) {
	rows, err := tx.Query(ctx, `
		SELECT c.table_name, c.column_name, c.udt_name, c.is_nullable = 'YES', c.is_identity = 'YES'
		FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
		ORDER BY c.table_name, c.ordinal_position`)
	if err != nil {
		return nil, fmt.Errorf("read the PostgreSQL schema: %w", err)
	}
	byName := map[string]*table{}
	var names []string
	for rows.Next() {
		var name string
		var c column
		if err := rows.Scan(&name, &c.name, &c.pgType, &c.nullable, &c.identity); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the PostgreSQL schema: %w", err)
		}
		if slices.Contains(notCopied, name) {
			continue
		}
		t := byName[name]
		if t == nil {
			t = &table{name: name}
			byName[name] = t
			names = append(names, name)
		}
		t.columns = append(t.columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the PostgreSQL schema: %w", err)
	}

	keys, err := tx.Query(ctx, `
		SELECT tc.table_name, k.column_name
		FROM information_schema.table_constraints tc
		JOIN information_schema.key_column_usage k
		  ON k.constraint_schema = tc.constraint_schema AND k.constraint_name = tc.constraint_name
		 AND k.table_name = tc.table_name
		WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema()
		ORDER BY tc.table_name, k.ordinal_position`)
	if err != nil {
		return nil, fmt.Errorf("read the PostgreSQL schema: %w", err)
	}
	for keys.Next() {
		var name, col string
		if err := keys.Scan(&name, &col); err != nil {
			keys.Close()
			return nil, fmt.Errorf("read the PostgreSQL schema: %w", err)
		}
		if t := byName[name]; t != nil {
			t.key = append(t.key, col)
		}
	}
	if err := keys.Err(); err != nil {
		return nil, fmt.Errorf("read the PostgreSQL schema: %w", err)
	}

	refs, err := tx.Query(ctx, `
		SELECT c.relname, p.relname
		FROM pg_constraint k
		JOIN pg_class c ON c.oid = k.conrelid
		JOIN pg_class p ON p.oid = k.confrelid
		WHERE k.contype = 'f' AND k.connamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`)
	if err != nil {
		return nil, fmt.Errorf("read the PostgreSQL schema: %w", err)
	}
	parents := map[string][]string{}
	for refs.Next() {
		var child, parent string
		if err := refs.Scan(&child, &parent); err != nil {
			refs.Close()
			return nil, fmt.Errorf("read the PostgreSQL schema: %w", err)
		}
		if child != parent {
			parents[child] = append(parents[child], parent)
		}
	}
	if err := refs.Err(); err != nil {
		return nil, fmt.Errorf("read the PostgreSQL schema: %w", err)
	}

	order, err := parentsFirst(names, parents)
	if err != nil {
		return nil, err
	}
	tables := make([]table, len(order))
	for i, name := range order {
		tables[i] = *byName[name]
	}
	return tables, nil
}

// parentsFirst orders names so that each comes after the tables it refers
// to; among tables free to go, alphabetically, so every copy goes alike.
func parentsFirst(names []string, parents map[string][]string) ([]string, error) {
	slices.Sort(names)
	done := map[string]bool{}
	var order []string
	for len(order) < len(names) {
		progressed := false
		for _, n := range names {
			if done[n] {
				continue
			}
			ready := true
			for _, p := range parents[n] {
				if !done[p] && slices.Contains(names, p) {
					ready = false
				}
			}
			if ready {
				done[n] = true
				order = append(order, n)
				progressed = true
			}
		}
		if !progressed {
			return nil, fmt.Errorf("the PostgreSQL schema's foreign keys form a cycle among tables not yet ordered: %v", order)
		}
	}
	return order, nil
}

// sqliteColumn is a column as SQLite declares it.
type sqliteColumn struct {
	name, typ string
}

// readSQLiteSchema reads the source's tables and their columns.
func readSQLiteSchema(ctx context.Context, tx *sql.Tx) (map[string][]sqliteColumn, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT m.name, c.name, upper(c.type)
		FROM sqlite_schema m, pragma_table_info(m.name) c
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
		ORDER BY m.name, c.cid`)
	if err != nil {
		return nil, fmt.Errorf("read the SQLite schema: %w", err)
	}
	defer rows.Close()
	tables := map[string][]sqliteColumn{}
	for rows.Next() {
		var name string
		var c sqliteColumn
		if err := rows.Scan(&name, &c.name, &c.typ); err != nil {
			return nil, fmt.Errorf("read the SQLite schema: %w", err)
		}
		if !slices.Contains(notCopied, name) {
			tables[name] = append(tables[name], c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the SQLite schema: %w", err)
	}
	return tables, nil
}

// matchSchemas checks that every table and column exists on both sides,
// with types that pair up, and reports every difference at once: a copy
// that left out a column, or a table, would lose data without a word.
func matchSchemas(pg []table, lite map[string][]sqliteColumn) error {
	var problems []string
	seen := map[string]bool{}
	for _, t := range pg {
		seen[t.name] = true
		cols, ok := lite[t.name]
		if !ok {
			problems = append(problems, fmt.Sprintf("table %s is in PostgreSQL but not in SQLite", t.name))
			continue
		}
		liteType := map[string]string{}
		for _, c := range cols {
			liteType[c.name] = c.typ
		}
		for _, c := range t.columns {
			typ, ok := liteType[c.name]
			want, known := sqliteTypes[c.pgType]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("column %s.%s is in PostgreSQL but not in SQLite", t.name, c.name))
			case !known:
				problems = append(problems, fmt.Sprintf("column %s.%s has PostgreSQL type %s, which the copy does not know", t.name, c.name, c.pgType))
			case typ != want:
				problems = append(problems, fmt.Sprintf("column %s.%s is %s in PostgreSQL but %s in SQLite (want %s)", t.name, c.name, c.pgType, typ, want))
			}
			delete(liteType, c.name)
		}
		for name := range liteType {
			problems = append(problems, fmt.Sprintf("column %s.%s is in SQLite but not in PostgreSQL", t.name, name))
		}
	}
	for name := range lite {
		if !seen[name] {
			problems = append(problems, fmt.Sprintf("table %s is in SQLite but not in PostgreSQL", name))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("%w:\n  %s", ErrSchemaMismatch, strings.Join(problems, "\n  "))
	}
	return nil
}

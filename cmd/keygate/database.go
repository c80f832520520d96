package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// connectTimeout bounds each connection attempt to PostgreSQL unless the
// URL sets connect_timeout: without it, a host that drops packets would
// hang a command (or serve's start) with no message at all.
const connectTimeout = "10"

// urlScheme matches the scheme of a URL, which a key=value string does not
// start with.
var urlScheme = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*)://`)

// databaseURL is a parsed --database value. A DSN carries a password, so
// nothing prints it: messages and logs use where.
type databaseURL struct {
	dsn      string // what postgres.Open is given
	where    string // "host H port P database D", safe to print
	password string // scrubbed from driver errors, which should never carry it anyway
}

// parseDatabaseURL checks a PostgreSQL connection string: a postgres:// or
// postgresql:// URL, or libpq's key=value form. A malformed one is a usage
// error whose message quotes nothing of it: the driver's own message may
// contain the password.
func parseDatabaseURL(raw string) (databaseURL, error) {
	isURL := strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://")
	if m := urlScheme.FindStringSubmatch(raw); m != nil && !isURL {
		return databaseURL{}, usagef("database URL: a %s:// URL is not a PostgreSQL database; use postgres://USER:PASSWORD@HOST:PORT/DATABASE (or leave it out for SQLite in the data directory)", m[1])
	}
	cfg, err := pgconn.ParseConfig(raw)
	if err != nil {
		if isURL {
			return databaseURL{}, usagef("database URL: not a valid postgres:// URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=…; percent-encode @ : / ? # %% in the password)")
		}
		return databaseURL{}, usagef("database URL: not a valid PostgreSQL connection string (postgres://USER:PASSWORD@HOST:PORT/DATABASE, or key=value pairs as libpq takes them)")
	}
	db := databaseURL{
		dsn:      raw,
		where:    fmt.Sprintf("host %s port %d database %s", cfg.Host, cfg.Port, cfg.Database),
		password: cfg.Password,
	}
	if cfg.ConnectTimeout == 0 {
		db.dsn = withConnectTimeout(raw, isURL)
	}
	return db, nil
}

// withConnectTimeout adds connect_timeout to a DSN that has none.
func withConnectTimeout(dsn string, isURL bool) string {
	if !isURL {
		return dsn + " connect_timeout=" + connectTimeout
	}
	// The parameter goes at the end of the query, before any fragment
	// (which the driver ignores).
	rest, frag, hasFrag := strings.Cut(dsn, "#")
	sep := "?"
	if strings.Contains(rest, "?") {
		sep = "&"
	}
	out := rest + sep + "connect_timeout=" + connectTimeout
	if hasFrag {
		out += "#" + frag
	}
	return out
}

// openError is the one-line error of a failed open: where it was going
// (never the DSN) and why; the password is scrubbed from the cause in case
// a driver ever quotes it.
func (db databaseURL) openError(err error) error {
	msg := err.Error()
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		msg = "cannot connect: " + ce.Unwrap().Error()
	}
	if db.password != "" {
		msg = strings.ReplaceAll(msg, db.password, "xxxxx")
	}
	// The driver tries again without TLS and reports both attempts, one
	// per line, often alike.
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" && !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	return fmt.Errorf("PostgreSQL at %s: %s", db.where, strings.Join(lines, "; "))
}

package postgres

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keygate/keygate/storage"
)

// SQLSTATE codes wrapErr maps (PostgreSQL's Appendix A).
const (
	uniqueViolation      = "23505"
	foreignKeyViolation  = "23503"
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

// wrapErr prefixes err with the operation and maps what the server says to
// the storage sentinels, so callers can test with errors.Is:
//
//   - no row: storage.ErrNotFound;
//   - unique_violation: storage.ErrAlreadyExists;
//   - foreign_key_violation (a credential for a user that does not
//     exist): storage.ErrNotFound, as the row it refers to is missing;
//   - serialization_failure and deadlock_detected: storage.ErrConflict.
//     At READ COMMITTED the first does not arise, and the second only
//     when two transactions lock the same rows in opposite orders; the
//     server has rolled one back. InTx runs its function again then; a
//     transaction begun with BeginTx is its owner's to retry.
//
// Constraint errors keep the server's message, which names the
// constraint. Most methods never raise the first three: they write
// conditionally and answer the sentinel from the row count, so that a
// transaction may go on after a taken key as it does on SQLite (see
// doc.go).
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	}
	if unreachable(err) {
		return fmt.Errorf("%s: %w: %w", op, storage.ErrUnavailable, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case uniqueViolation:
			return fmt.Errorf("%s: %w: %w", op, storage.ErrAlreadyExists, err)
		case foreignKeyViolation:
			return fmt.Errorf("%s: %w: %w", op, storage.ErrNotFound, err)
		case serializationFailure, deadlockDetected:
			return fmt.Errorf("%s: %w: %w", op, storage.ErrConflict, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// notFound and exists are the errors of a conditional write that matched
// no row, or found its key taken.
func notFound(op string) error { return fmt.Errorf("%s: %w", op, storage.ErrNotFound) }
func exists(op string) error   { return fmt.Errorf("%s: %w", op, storage.ErrAlreadyExists) }

// affected turns a single-row write's result into ErrNotFound when it
// matched nothing.
func affected(op string, tag pgconn.CommandTag, err error) error {
	if err != nil {
		return wrapErr(op, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(op)
	}
	return nil
}

// inserted turns a conditional insert's result (ON CONFLICT DO NOTHING)
// into ErrAlreadyExists when it inserted nothing.
func inserted(op string, tag pgconn.CommandTag, err error) error {
	if err != nil {
		return wrapErr(op, err)
	}
	if tag.RowsAffected() == 0 {
		return exists(op)
	}
	return nil
}

// count returns how many rows a bulk write changed.
func count(op string, tag pgconn.CommandTag, err error) (int, error) {
	if err != nil {
		return 0, wrapErr(op, err)
	}
	return int(tag.RowsAffected()), nil
}

// unreachable reports whether err says the server cannot be reached or
// is going away: a failed connect, a connection lost mid-statement, or
// the server shutting down, starting up or refusing connections (class
// 08, and 57P01–57P03).
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ne net.Error
	return errors.As(err, &ne) || pgconn.SafeToRetry(err) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

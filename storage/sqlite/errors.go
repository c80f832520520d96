package sqlite

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"

	"github.com/keygate/keygate/storage"
)

// wrapErr prefixes err with the operation and maps what the driver says to
// the storage sentinels, so callers can test with errors.Is:
//
//   - no row: storage.ErrNotFound;
//   - a UNIQUE or PRIMARY KEY constraint: storage.ErrAlreadyExists;
//   - a FOREIGN KEY constraint (a credential for a user that does not
//     exist): storage.ErrNotFound, as the row it refers to is missing.
//
// Constraint errors keep the driver's message, which names the column.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	}
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		switch se.ExtendedCode {
		case sqlite3.ErrConstraintUnique, sqlite3.ErrConstraintPrimaryKey:
			return fmt.Errorf("%s: %w: %w", op, storage.ErrAlreadyExists, err)
		case sqlite3.ErrConstraintForeignKey:
			return fmt.Errorf("%s: %w: %w", op, storage.ErrNotFound, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// notFound is the error of a write that matched no row.
func notFound(op string) error {
	return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
}

// affected turns a single-row write's result into ErrNotFound when it
// matched nothing.
func affected(op string, res sql.Result, err error) error {
	if err != nil {
		return wrapErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr(op, err)
	}
	if n == 0 {
		return notFound(op)
	}
	return nil
}

// count returns how many rows a bulk write changed.
func count(op string, res sql.Result, err error) (int, error) {
	if err != nil {
		return 0, wrapErr(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrapErr(op, err)
	}
	return int(n), nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

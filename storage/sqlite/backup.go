package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
)

// Backup writes a consistent, compacted copy of the database to path with
// VACUUM INTO. It refuses to overwrite: path must not exist.
//
// It runs on a connection of its own: the readers are query-only, which
// VACUUM INTO counts as writing, and the writer would hold up every write
// for as long as the copy takes. VACUUM INTO reads one snapshot, so writes
// carry on meanwhile. The context's transaction, if any, is not used:
// VACUUM cannot run inside one, and the copy is of committed data.
func (s *Store) Backup(ctx context.Context, path string) error {
	const op = "backup"
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s: %s: %w", op, path, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", op, err)
	}

	db, err := sql.Open("sqlite3", s.path+"?"+url.Values{
		"_busy_timeout": {fmt.Sprint(busyTimeoutMS)},
	}.Encode())
	if err != nil {
		return wrapErr(op, err)
	}
	defer db.Close()
	// VACUUM INTO itself also refuses an existing non-empty file, which
	// closes the window between the check above and the copy.
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, path)
	return wrapErr(op, err)
}

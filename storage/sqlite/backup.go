package sqlite

import (
	"context"
	"database/sql"
	"fmt"
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
func (s *Store) Backup(ctx context.Context, path string) (err error) {
	const op = "backup"
	// Creating the file first, exclusively, refuses an existing one with
	// no window for a race, and keeps the copy of sealed keys and hashes
	// readable by its owner only; VACUUM INTO accepts an empty file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(path) // no half-written backup left behind
		}
	}()

	db, err := sql.Open("sqlite3", s.path+"?"+url.Values{
		"_busy_timeout": {fmt.Sprint(busyTimeoutMS)},
	}.Encode())
	if err != nil {
		return wrapErr(op, err)
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, path)
	return wrapErr(op, err)
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// Backup writes a consistent, compacted copy of the database to path with
// VACUUM INTO. It refuses to overwrite: path must not exist (fs.ErrExist).
//
// The copy appears at path only when it is complete and on disk: it is
// written to a file beside path named path + ".partial-" and a random
// suffix, synced, linked to path (which fails if path exists, with no
// window for a race), and the directory synced. Any failure, cancellation
// included, removes the partial file. A process killed part-way cannot, so
// it leaves a .partial file, which may be deleted — never a path that
// opens as an empty or torn database, and a rerun works.
//
// It runs on a connection of its own: the readers are query-only, which
// VACUUM INTO counts as writing, and the writer would hold up every write
// for as long as the copy takes. VACUUM INTO reads one snapshot, so writes
// carry on meanwhile. The context's transaction, if any, is not used:
// VACUUM cannot run inside one, and the copy is of committed data.
func (s *Store) Backup(ctx context.Context, path string) error {
	const op = "backup"
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s: %w", op, &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist})
	}
	dir := filepath.Dir(path)
	// CreateTemp makes the file readable by its owner only, as the copy of
	// sealed keys and hashes must be; VACUUM INTO accepts an empty file.
	f, err := os.CreateTemp(dir, filepath.Base(path)+".partial-*")
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	partial := f.Name()
	f.Close()
	// After the link the partial name is a second name of the backup;
	// removing it is right whatever happened.
	defer os.Remove(partial + "-journal")
	defer os.Remove(partial)

	if err := s.vacuumInto(ctx, partial); err != nil {
		return wrapErr(op, err)
	}
	if err := syncPath(partial); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := linkNew(partial, path); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := syncPath(dir); err != nil {
		return fmt.Errorf("%s: the backup is complete but its directory entry may not be on disk: %w", op, err)
	}
	return nil
}

func (s *Store) vacuumInto(ctx context.Context, target string) error {
	db, err := s.openBackupConn()
	if err != nil {
		return err
	}
	defer db.Close()
	// Whatever VACUUM INTO syncs, Backup syncs the file before naming it.
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, target)
	return err
}

// openBackupConn opens Backup's own connection to the database.
func (s *Store) openBackupConn() (*sql.DB, error) {
	return sql.Open("sqlite3", s.path+"?"+url.Values{
		"_busy_timeout": {fmt.Sprint(busyTimeoutMS)},
		"_synchronous":  {synchronous},
	}.Encode())
}

// linkNew gives the file at from the new name to, failing if to exists.
// A file system without hard links gets a rename after a check instead.
func linkNew(from, to string) error {
	err := os.Link(from, to)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, serr := os.Lstat(to); serr == nil {
		return &fs.PathError{Op: "link", Path: to, Err: fs.ErrExist}
	}
	return os.Rename(from, to)
}

// syncPath flushes a file, or a directory's entries, to disk.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

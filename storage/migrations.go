package storage

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one step of a backend's schema history: a numbered SQL
// file (0001_initial.sql, 0002_….sql) embedded in the binary. The backends
// number their steps alike, so that a schema version means the same on
// each.
type Migration struct {
	Version int
	Name    string // the file's name
	SQL     string
}

// ReadMigrations reads the migrations in fsys whose paths match pattern,
// in version order, checking that the numbering starts at 1 and has
// neither duplicates nor gaps.
func ReadMigrations(fsys fs.FS, pattern string) ([]Migration, error) {
	names, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name does not start with a version number", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.Name, i+1)
		}
	}
	return ms, nil
}

// CheckSchemaVersion refuses a database at schema version current when it
// is newer than the last of ms: this binary would not know how to read
// it. Shared so that every backend refuses alike, in the same words.
func CheckSchemaVersion(current int, ms []Migration) error {
	if latest := len(ms); current > latest {
		return fmt.Errorf("the database is at schema version %d but this keygate only knows up to %d; run a newer keygate or restore a backup", current, latest)
	}
	return nil
}

// Package sqlitetest opens throwaway SQLite stores for tests: a fresh file
// in the test's temporary directory, migrated, closed when the test ends.
//
// It is a test helper: only _test.go files may import it (the architecture
// test in internal/archtest checks that no other package depends on it).
// Like package sqlite it knows nothing of keygate above storage, so tests
// of storage packages can use it as well as the server's.
//
// The tests of package sqlite itself cannot import it (it imports sqlite);
// they open their stores directly.
package sqlitetest

import (
	"path/filepath"
	"testing"

	"github.com/keygate/keygate/storage/sqlite"
)

// Open opens a new, empty store in t's temporary directory and closes it
// when t and its subtests are done. It fails t on any error.
func Open(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

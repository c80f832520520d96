// Package postgrestest opens throwaway PostgreSQL stores for tests, on a
// server package pgtest finds: a new schema, migrated, dropped when the
// test ends. A package whose tests use it calls pgtest.Main from TestMain.
//
// It is a test helper: only _test.go files may import it (the architecture
// test in internal/archtest checks that no other package depends on it).
// The tests of package postgres itself cannot import it (it imports
// postgres); they open their stores directly.
package postgrestest

import (
	"testing"

	"github.com/keygate/keygate/storage/postgres"
	"github.com/keygate/keygate/storage/postgres/pgtest"
)

// Replicas opens n stores on one new schema, as n keygate replicas on one
// database would (n pools, n change listeners), and closes them when t is
// done. It fails t on any error.
func Replicas(t testing.TB, n int) []*postgres.Store {
	t.Helper()
	dsn := pgtest.Schema(t)
	out := make([]*postgres.Store, n)
	for i := range out {
		s, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out
}

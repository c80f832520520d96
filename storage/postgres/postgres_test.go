package postgres

import (
	"testing"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/conformance"
	"github.com/keygate/keygate/storage/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openFresh opens a store on a new schema of its own, which Open
// migrates; it is closed and dropped when t ends.
func openFresh(t testing.TB) *Store {
	t.Helper()
	return openDSN(t, pgtest.Schema(t))
}

func openDSN(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) storage.Store { return openFresh(t) })
}

func TestTrimSignIns(t *testing.T) {
	conformance.TrimSignIns(t, func(t *testing.T) (storage.Store, conformance.Trim) {
		s := openFresh(t)
		for _, id := range []string{"u", "v"} {
			if err := s.CreateUser(t.Context(), storage.User{ID: id, Email: id + "@example.com", CreatedAt: t0}); err != nil {
				t.Fatal(err)
			}
		}
		return s, s.trimSignIns
	})
}

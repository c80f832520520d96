package postgres

import (
	"context"
	"testing"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/conformance"
	"github.com/keygate/keygate/storage/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// migrated fills a template database with the schema.
func migrated(ctx context.Context, dsn string) error {
	s, err := Open(ctx, dsn)
	if err != nil {
		return err
	}
	return s.Close()
}

// openFresh opens a store on a new database of its own, migrated, closed
// and dropped when t ends.
func openFresh(t testing.TB) *Store {
	t.Helper()
	return openDSN(t, pgtest.Fresh(t, "migrated", migrated))
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

package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/storage"
)

// A server that cannot be reached, or that ends the connection under a
// transaction, is storage.ErrUnavailable: the pages then answer 503 "try
// again", not 500, and no answer about the data is made up from it.
func TestAnUnreachableServerIsUnavailable(t *testing.T) {
	_, err := pgx.Connect(t.Context(), "host=/nonexistent-keygate-socket-dir port=1 user=keygate dbname=keygate connect_timeout=1")
	if got := wrapErr("connect", err); !errors.Is(got, storage.ErrUnavailable) {
		t.Errorf("a failed connect: %v, want ErrUnavailable", got)
	}

	s := openFresh(t)
	err = s.InTx(t.Context(), func(ctx context.Context) error {
		var pid uint32
		if err := s.q(ctx).QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if _, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend($1, 10000)`, pid); err != nil {
			t.Fatal(err)
		}
		_, err := s.GetUser(ctx, "u_anyone")
		return err
	})
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a read on a connection the server ended: %v, want ErrUnavailable", err)
	}
	if _, err := s.GetUser(t.Context(), "u_anyone"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("once the pool has a new connection: %v, want ErrNotFound", err)
	}
}

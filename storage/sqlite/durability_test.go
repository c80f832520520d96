package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
)

// Every connection commits with synchronous=FULL, so an acknowledged write
// survives a power cut: the writer, the checkpointer, Backup's own
// connection, and each reader (the last connection to close checkpoints
// the WAL, whichever it is).
func TestEveryConnectionSyncsFully(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	backup, err := s.openBackupConn()
	if err != nil {
		t.Fatal(err)
	}
	defer backup.Close()

	check := func(name string, q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) {
		t.Helper()
		var mode int
		if err := q.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&mode); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if mode != 2 {
			t.Errorf("%s: synchronous = %d, want 2 (FULL)", name, mode)
		}
	}
	check("the writer", s.wdb)
	check("the checkpointer", s.checkpoints.db)
	check("the backup connection", backup)
	// Held at once, the readers are as many distinct connections.
	for i := range s.rdb.Stats().MaxOpenConnections {
		c, err := s.rdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		check(fmt.Sprint("reader ", i), c)
	}
}

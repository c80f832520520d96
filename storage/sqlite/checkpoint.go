package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints copy committed pages from the WAL back into the database
// file. SQLite runs one on the committing connection whenever the WAL
// passes 1,000 pages, inside the writer's commit: copying and two fsyncs
// on the one path every write waits for (a sixth of the token endpoint's
// throughput in load runs). Here a connection of its own checkpoints in the
// background instead, and the writer's own checkpoint runs four times as
// rarely, with little left to copy.
const (
	checkpointEvery = 100 * time.Millisecond
	// writerCheckpointPages is the writer's own threshold. Under constant
	// writes the background checkpoint never quite catches up with the
	// end of the WAL, and only a checkpoint between two of the writer's
	// transactions lets the next one start the WAL over; by then the
	// background has copied nearly everything, so this one is short.
	writerCheckpointPages = 4000
)

// checkpointer runs PASSIVE checkpoints on its own connection; they never
// block the writer or readers. It runs only after this Store has written,
// so an idle server does no work (writes by another process are left to
// their own checkpoints, and to this Store's next write).
type checkpointer struct {
	db       *sql.DB
	wrote    *atomic.Bool
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func startCheckpointer(db *sql.DB, wrote *atomic.Bool) *checkpointer {
	c := &checkpointer{db: db, wrote: wrote, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if c.wrote.Swap(false) {
				c.checkpoint()
			}
		}
	}
}

// checkpoint copies what it can. Errors are not fatal: the writer's own
// checkpoint still bounds the WAL, and the next tick tries again.
func (c *checkpointer) checkpoint() {
	ctx := context.Background()
	_, _ = c.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
}

// close may be called more than once, as Store.Close may.
func (c *checkpointer) close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}

package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/storage"
)

// jobLockClass is the first key of the session-level advisory locks
// RunExclusive takes ("kgjb" in ASCII); the second is a hash of the schema
// and the job's name. PostgreSQL keeps two-key advisory locks apart from
// one-key ones, so these never meet the migration and token locks.
const jobLockClass int32 = 0x6b67_6a62

// lockCheck is how often the connection holding a job's lock is checked
// while the job runs.
const lockCheck = 2 * time.Second

// errLockLost ends a job's context when the connection holding its lock
// broke: the server released the lock, and another replica may take the
// job.
var errLockLost = errors.New("the job's lock was lost with its connection to the database")

// RunExclusive implements storage.Exclusive with a session-level advisory
// lock, held while fn runs on a connection of its own (so that a job takes
// no connection from the requests' pool): a replica whose lock is taken
// skips the job (pg_try_advisory_lock does not wait), and the lock ends
// with its connection, when the job is done or when the replica dies or
// loses the connection. fn runs on the pool, outside any transaction, so
// a long job (a sweep in batches) holds no row locks.
func (s *Store) RunExclusive(ctx context.Context, job string, fn func(ctx context.Context) error) (bool, error) {
	const op = "run exclusive"
	conn, err := pgx.ConnectConfig(ctx, s.connConfig)
	if err != nil {
		return false, wrapErr(op, err)
	}
	// Closing the connection releases the lock.
	defer conn.Close(context.WithoutCancel(ctx))
	var locked bool
	err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`,
		jobLockClass, s.schema+"."+job).Scan(&locked)
	if err != nil || !locked {
		return false, wrapErr(op, err)
	}

	jobCtx, cancel := context.WithCancelCause(ctx)
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		t := time.NewTicker(lockCheck)
		defer t.Stop()
		for {
			select {
			case <-jobCtx.Done():
				return
			case <-t.C:
				if err := conn.Ping(jobCtx); err != nil && jobCtx.Err() == nil {
					cancel(errLockLost)
					return
				}
			}
		}
	}()
	err = fn(jobCtx)
	if context.Cause(jobCtx) == errLockLost {
		err = errors.Join(err, errLockLost)
	}
	cancel(nil)
	<-checked
	return true, err
}

var _ storage.Exclusive = (*Store)(nil)

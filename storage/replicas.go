package storage

import (
	"context"
	"errors"
	"time"
)

// What a backend that several processes share (several keygate replicas
// on one PostgreSQL database) offers beyond Store. The server asks for
// these by type assertion; a backend that only one process serves
// (SQLite) need not have them, and the server then does the plain thing.

// Exclusive runs a job in one process at a time across every process on
// the database.
type Exclusive interface {
	// RunExclusive runs fn unless another process runs the job of this
	// name now; ran reports whether fn ran, err is fn's error or the
	// lock's. fn's context ends early if the lock is lost (its holder's
	// connection to the database broke), since another process may then
	// take the job.
	RunExclusive(ctx context.Context, job string, fn func(ctx context.Context) error) (ran bool, err error)
}

// Change topics a ChangeWatcher reports.
const (
	TopicClients     = "clients"
	TopicSigningKeys = "signing_keys"
)

// Topics are every change topic.
var Topics = []string{TopicClients, TopicSigningKeys}

// ChangeWatcher reports changes committed to the database by any process,
// so that what a process holds in memory follows them at once rather than
// on a timer.
type ChangeWatcher interface {
	// WatchChanges calls fn with the topic of each change committed from
	// now on, until ctx ends. While the backend cannot hear changes (its
	// connection broke) some may be missed; once it hears again it calls
	// fn with every topic. fn runs on the backend's listening goroutine:
	// it must return quickly and must not call back into the store.
	WatchChanges(ctx context.Context, fn func(topic string))
}

// errPeek rolls back PendingOutbox's claim.
var errPeek = errors.New("outbox peek")

// PendingOutbox lists the messages ClaimOutbox would claim at now without
// claiming them: it claims in a transaction it then rolls back. It is for
// looking at the outbox (tests, an operator's listing), not for
// delivering; ctx must not carry a transaction, whose rollback it would be.
func PendingOutbox(ctx context.Context, st interface {
	Outbox
	Transactor
}, now time.Time, limit int) ([]OutboxMessage, error) {
	var out []OutboxMessage
	err := st.InTx(ctx, func(ctx context.Context) error {
		ms, err := st.ClaimOutbox(ctx, now, now, limit)
		if err != nil {
			return err
		}
		out = ms
		return errPeek
	})
	if !errors.Is(err, errPeek) {
		return nil, err
	}
	return out, nil
}

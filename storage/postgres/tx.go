package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is what *pgxpool.Pool and pgx.Tx have in common: every method
// runs its statements on the one s.q returns.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// txKey keys the context value holding a transaction of this Store. Keying
// by Store means a transaction of one database is never used for another.
type txKey struct{ s *Store }

// txState is what a transaction's context carries. Contexts that join a
// transaction share their owner's state.
type txState struct {
	tx pgx.Tx
	// ended is set when a joined context rolled the transaction back: the
	// owner's Commit (or InTx) then reports errRolledBack.
	ended bool
	// after runs once the transaction has ended (see afterTx).
	after []func()
}

// afterTx runs f once the transaction ctx carries has committed or rolled
// back, or at once if ctx carries none: dropping a cached row, which a
// read could otherwise put back from the last committed state between
// the write and the commit.
func (s *Store) afterTx(ctx context.Context, f func()) {
	if st := s.txFrom(ctx); st != nil {
		st.after = append(st.after, f)
		return
	}
	f()
}

// finish runs what waited for the transaction's end.
func (st *txState) finish() {
	after := st.after
	st.after = nil
	for _, f := range after {
		f()
	}
}

// txCtx is what a transaction's context carries: its state, and whether
// this context began the transaction (and so commits it) or joined it.
type txCtx struct {
	*txState
	joined bool
}

var (
	errRolledBack = errors.New("transaction rolled back")
	errNoTx       = errors.New("no transaction in context")
)

func (s *Store) txFrom(ctx context.Context) *txCtx {
	st, _ := ctx.Value(txKey{s}).(*txCtx)
	return st
}

// q returns where a statement runs: the context's transaction, else the
// pool, where each statement commits on its own.
func (s *Store) q(ctx context.Context) querier {
	if st := s.txFrom(ctx); st != nil {
		return st.tx
	}
	return s.pool
}

// Row locks for reads inside a transaction. A read of one row by its key
// in a transaction locks the row until the transaction ends, so the
// transaction is ordered with any other that changes the row, as SQLite's
// one writer orders every write transaction (see doc.go). Outside a
// transaction reads take no lock.
const (
	// forKeyShare is for users, clients, groups and memberships, read on
	// every token request. It is the weakest lock and many transactions
	// hold it at once; it waits only for UpdateUser, UpdateClient,
	// UpdateGroup (which lock with FOR UPDATE) and deletes.
	forKeyShare = " FOR KEY SHARE"
	// forUpdate is for rows a transaction reads in order to change them
	// (a code being exchanged, a refresh token being rotated): a second
	// transaction waits, then reads the row as the first left it.
	forUpdate = " FOR UPDATE"
)

// lock returns clause inside a transaction and "" outside.
func (s *Store) lock(ctx context.Context, clause string) string {
	if s.txFrom(ctx) != nil {
		return clause
	}
	return ""
}

// InTx runs fn in a transaction: its writes all commit if it returns nil,
// and none does if it returns an error, panics or calls runtime.Goexit.
// With a context already in a transaction it just calls fn, which then
// joins that transaction: its writes commit or roll back with the outer
// ones.
//
// The transaction runs at READ COMMITTED: each statement sees what was
// committed when it began, conditional writes re-check their condition
// on the row as the last writer left it, and reads by key lock the row
// (see lock).
//
// When the server rolls the transaction back because it and another were
// waiting for each other (a deadlock, or a serialization failure), InTx
// runs fn again in a new transaction, up to maxAttempts times in all: the
// kill actions lock a user before the tokens a refresh in flight has
// locked before the user, and an administrator suspending someone must
// not be told "try again" because the account was busy. So fn may run
// more than once; it must act only through the store (every InTx
// function in keygate does). A joined context never retries: the owner
// of the transaction does.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.txFrom(ctx) != nil {
		return fn(ctx)
	}
	for attempt := 1; ; attempt++ {
		err := s.inNewTx(ctx, fn)
		if attempt == maxAttempts || !rolledBackByServer(err) || ctx.Err() != nil {
			return err
		}
		// A short, random wait keeps the two from meeting again at once.
		time.Sleep(time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond)
	}
}

// maxAttempts bounds InTx's runs of one function.
const maxAttempts = 5

// rolledBackByServer reports whether err is the server's rollback of a
// transaction that waited on another (deadlock_detected or
// serialization_failure): only then may running it again succeed. A
// storage.ErrConflict a function returns by itself is its own answer.
func rolledBackByServer(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == deadlockDetected || pe.Code == serializationFailure)
}

func (s *Store) inNewTx(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrapErr("begin transaction", err)
	}
	st := &txCtx{txState: &txState{tx: tx}}
	returned := false
	defer func() {
		if !returned || err != nil {
			// A rollback must reach the server even when ctx is done.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
		st.finish()
	}()
	err = fn(context.WithValue(ctx, txKey{s}, st))
	returned = true
	switch {
	case err != nil:
		return err
	case st.ended:
		return errRolledBack
	}
	return wrapErr("commit", tx.Commit(ctx))
}

// BeginTx starts a transaction and returns a context carrying it. On a
// context already in a transaction it joins it: Commit on the returned
// context does nothing (the outer owner commits), while Rollback undoes
// the whole transaction, so a failure anywhere undoes everything and the
// owner's Commit then reports it.
func (s *Store) BeginTx(ctx context.Context) (context.Context, error) {
	if st := s.txFrom(ctx); st != nil {
		return context.WithValue(ctx, txKey{s}, &txCtx{txState: st.txState, joined: true}), nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return ctx, wrapErr("begin transaction", err)
	}
	return context.WithValue(ctx, txKey{s}, &txCtx{txState: &txState{tx: tx}}), nil
}

// Commit commits the transaction ctx carries; on a joined context it does
// nothing.
func (s *Store) Commit(ctx context.Context) error {
	st := s.txFrom(ctx)
	switch {
	case st == nil:
		return fmt.Errorf("commit: %w", errNoTx)
	case st.joined:
		return nil
	case st.ended:
		return fmt.Errorf("commit: %w", errRolledBack)
	}
	defer st.finish()
	return wrapErr("commit", st.tx.Commit(ctx))
}

// Rollback rolls back the transaction ctx carries, joined or not. Rolling
// back a transaction that is already finished is not an error, so that a
// deferred Rollback after Commit is harmless.
func (s *Store) Rollback(ctx context.Context) error {
	st := s.txFrom(ctx)
	if st == nil {
		return fmt.Errorf("rollback: %w", errNoTx)
	}
	st.ended = true
	defer st.finish()
	err := st.tx.Rollback(context.WithoutCancel(ctx))
	if err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return wrapErr("rollback", err)
	}
	return nil
}

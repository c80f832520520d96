package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// querier is what *sql.DB and *sql.Tx have in common: every method runs its
// statements on one, chosen by r or w.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// txKey keys the context value holding a transaction of this Store. Keying
// by Store means a transaction of one database is never used for another.
type txKey struct{ s *Store }

// txState is what a transaction's context carries.
type txState struct {
	tx *sql.Tx
	// joined marks a context from BeginTx on a context that already carried
	// a transaction: its Commit is left to whoever began the transaction.
	joined bool
}

func (s *Store) txFrom(ctx context.Context) *txState {
	st, _ := ctx.Value(txKey{s}).(*txState)
	return st
}

// r returns where a read runs: the context's transaction, so it sees the
// transaction's own writes, else the reader pool.
func (s *Store) r(ctx context.Context) querier {
	if st := s.txFrom(ctx); st != nil {
		return st.tx
	}
	return s.rdb
}

// w returns where a write runs: the context's transaction, else the writer
// connection, where a single statement commits on its own.
func (s *Store) w(ctx context.Context) querier {
	if st := s.txFrom(ctx); st != nil {
		return st.tx
	}
	return s.wdb
}

// InTx runs fn in a write transaction, committing if it returns nil and
// rolling back if it returns an error or panics. With a context already in
// a transaction it just calls fn, which then joins that transaction: its
// writes commit or roll back with the outer ones.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.txFrom(ctx) != nil {
		return fn(ctx)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("begin transaction", err)
	}
	committing := false
	defer func() {
		// Covers both an error and a panic (or t.Fatal) in fn.
		if !committing {
			_ = tx.Rollback()
		}
	}()
	if err := fn(context.WithValue(ctx, txKey{s}, &txState{tx: tx})); err != nil {
		return err
	}
	committing = true
	return wrapErr("commit", tx.Commit())
}

// BeginTx starts a write transaction and returns a context carrying it.
// On a context already in a transaction it joins it: Commit on the returned
// context does nothing (the outer owner commits), while Rollback rolls back
// the whole transaction, so a failure anywhere undoes everything and the
// owner's Commit then reports it.
func (s *Store) BeginTx(ctx context.Context) (context.Context, error) {
	if st := s.txFrom(ctx); st != nil {
		return context.WithValue(ctx, txKey{s}, &txState{tx: st.tx, joined: true}), nil
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return ctx, wrapErr("begin transaction", err)
	}
	return context.WithValue(ctx, txKey{s}, &txState{tx: tx}), nil
}

var errNoTx = errors.New("no transaction in context")

// Commit commits the transaction ctx carries.
func (s *Store) Commit(ctx context.Context) error {
	st := s.txFrom(ctx)
	switch {
	case st == nil:
		return fmt.Errorf("commit: %w", errNoTx)
	case st.joined:
		return nil
	}
	return wrapErr("commit", st.tx.Commit())
}

// Rollback rolls back the transaction ctx carries. Rolling back a
// transaction that is already finished is not an error, so that a deferred
// Rollback after Commit is harmless.
func (s *Store) Rollback(ctx context.Context) error {
	st := s.txFrom(ctx)
	if st == nil {
		return fmt.Errorf("rollback: %w", errNoTx)
	}
	if err := st.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return wrapErr("rollback", err)
	}
	return nil
}

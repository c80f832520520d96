package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
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
	// member is set inside an InTx function, whose writes share a group
	// commit with other callers' (groupCommit). Rolling back a joined
	// transaction there undoes that function's writes only.
	member *memberState
	// after holds what must run once the transaction has ended (see
	// Store.afterTx); joined contexts share their owner's.
	after *afterTx
}

type memberState struct{ rolledBack atomic.Bool }

// afterTx collects functions to run once a transaction has committed or
// rolled back: dropping a cached row, which a read could otherwise put
// back from the last committed state between the write and the commit.
type afterTx struct {
	mu  sync.Mutex
	fns []func()
}

func (a *afterTx) add(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fns = append(a.fns, f)
}

func (a *afterTx) run() {
	a.mu.Lock()
	fns := a.fns
	a.fns = nil
	a.mu.Unlock()
	for _, f := range fns {
		f()
	}
}

// afterTx runs f once the transaction ctx carries has ended, or at once
// if ctx carries none.
func (s *Store) afterTx(ctx context.Context, f func()) {
	if st := s.txFrom(ctx); st != nil && st.after != nil {
		st.after.add(f)
		return
	}
	f()
}

var errRolledBack = errors.New("transaction rolled back")

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
	s.wrote.Store(true)
	if st := s.txFrom(ctx); st != nil {
		return st.tx
	}
	return s.wdb
}

// maxGroup bounds how many InTx calls share one commit, and so how long
// the first of them waits for it.
const maxGroup = 64

// groupCommit lets concurrent InTx calls share one SQLite transaction: each
// runs its function in turn, under its own savepoint, and the last caller
// in line commits for all. One commit then writes the pages the group has
// in common (the token and audit B-trees' last leaves, say) once rather
// than once per caller: a token endpoint at 16 connections commits about
// nine tokens at a time. Nothing is batched while there is no queue: a lone
// caller begins, runs and commits as before.
//
// Each caller still gets the transaction's guarantees for its own writes:
// they are all committed, or none is (ROLLBACK TO its savepoint), and InTx
// returns only once they are durable to the same degree as a lone commit.
type groupCommit struct {
	// mu is held while a caller runs its function on the open transaction.
	mu sync.Mutex
	// queued counts callers between wanting mu and being done with it; the
	// one that brings it back to zero commits.
	queued atomic.Int32
	// Guarded by mu: the open transaction, its size and its outcome.
	tx      *sql.Tx
	members int
	outcome *groupOutcome
}

type groupOutcome struct {
	done chan struct{}
	err  error // the commit's error, set before done is closed
}

// InTx runs fn in a write transaction: its writes all commit if it returns
// nil, and none does if it returns an error or panics. With a context
// already in a transaction it just calls fn, which then joins that
// transaction: its writes commit or roll back with the outer ones.
//
// Concurrent calls share commits (see groupCommit); fn must not wait for
// another InTx call, which may be queued behind it.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if s.txFrom(ctx) != nil {
		return fn(ctx)
	}
	g := &s.group
	g.queued.Add(1)
	g.mu.Lock()
	// The caller that begins the transaction runs first and alone in it,
	// so it needs no savepoint: on failure it rolls everything back.
	first := g.tx == nil
	if first {
		// The transaction outlives this caller's context: others join it.
		tx, err := s.wdb.BeginTx(context.WithoutCancel(ctx), nil)
		if err != nil {
			g.queued.Add(-1)
			g.mu.Unlock()
			return wrapErr("begin transaction", err)
		}
		g.tx, g.members, g.outcome = tx, 0, &groupOutcome{done: make(chan struct{})}
	}
	tx, outcome := g.tx, g.outcome
	g.members++
	savepoint := fmt.Sprintf("m%d", g.members)
	returned := false
	after := &afterTx{}
	// Deferred first, so it runs last: once the group has committed.
	defer after.run()
	defer func() {
		// Runs on return, panic and runtime.Goexit (t.Fatal) alike: undo
		// this caller's writes unless fn succeeded, then commit the group
		// if no one else is queued, or else leave that to the last one.
		if !returned {
			err = errRolledBack
		}
		var serr error
		if !first {
			if err != nil {
				if _, rerr := tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO "+savepoint); rerr != nil {
					// Some errors (SQLITE_FULL, I/O) end the whole
					// transaction; the commit below then fails for all.
					err = errors.Join(err, wrapErr("rollback to savepoint", rerr))
				}
			}
			_, serr = tx.ExecContext(context.WithoutCancel(ctx), "RELEASE "+savepoint)
		}
		if err == nil && serr == nil && g.queued.Load() == 1 && g.members < maxGroup {
			// About to commit alone: let the goroutines that are a moment
			// from calling InTx run first, so they can join this commit.
			// At 16 connections that takes the token endpoint from 3 to 9
			// tokens a commit (+15-20% tokens/s, and a lower p99); with
			// nothing else to run it returns at once.
			runtime.Gosched()
		}
		last := g.queued.Add(-1) == 0
		switch {
		case first && err != nil:
			// No one else has joined yet.
			_ = tx.Rollback()
			g.tx, g.outcome = nil, nil
			outcome.err = err
			close(outcome.done)
			g.mu.Unlock()
		case serr != nil || err != nil || last || g.members >= maxGroup:
			// Commit now: after a failure too, so that a transaction SQLite
			// may have ended itself takes no further members.
			outcome.err = wrapErr("commit", tx.Commit())
			g.tx, g.outcome = nil, nil
			close(outcome.done)
			g.mu.Unlock()
		default:
			g.mu.Unlock()
			<-outcome.done
		}
		if err == nil {
			err = errors.Join(wrapErr("release savepoint", serr), outcome.err)
		}
	}()
	if !first {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
			returned = true
			return wrapErr("savepoint", err)
		}
	}
	member := &memberState{}
	err = fn(context.WithValue(ctx, txKey{s}, &txState{tx: tx, joined: true, member: member, after: after}))
	returned = true
	if err == nil && member.rolledBack.Load() {
		err = errRolledBack
	}
	return err
}

// BeginTx starts a write transaction and returns a context carrying it.
// On a context already in a transaction it joins it: Commit on the returned
// context does nothing (the outer owner commits), while Rollback undoes the
// whole transaction (inside InTx: that InTx function's writes), so a
// failure anywhere undoes everything and the owner's Commit then reports
// it.
func (s *Store) BeginTx(ctx context.Context) (context.Context, error) {
	if st := s.txFrom(ctx); st != nil {
		return context.WithValue(ctx, txKey{s}, &txState{tx: st.tx, joined: true, member: st.member, after: st.after}), nil
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return ctx, wrapErr("begin transaction", err)
	}
	return context.WithValue(ctx, txKey{s}, &txState{tx: tx, after: &afterTx{}}), nil
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
	defer st.after.run()
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
	if st.member != nil {
		// The InTx that owns the savepoint rolls back to it when fn
		// returns; other members' writes stay.
		st.member.rolledBack.Store(true)
		return nil
	}
	if !st.joined {
		defer st.after.run()
	}
	if err := st.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return wrapErr("rollback", err)
	}
	return nil
}

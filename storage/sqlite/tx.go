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
	// member is the InTx or BeginTx caller's part of the group commit
	// (groupCommit): a Rollback anywhere in it undoes that caller's writes
	// only, when the caller ends.
	member *memberState
	// after holds what must run once the transaction has ended (see
	// Store.afterTx); every context of one caller shares it.
	after *afterTx
	// owner is set on the context BeginTx returned, and only there: its
	// Commit or Rollback ends the caller's part; on any other context
	// Commit does nothing, the caller that began it commits.
	owner *groupMember
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

// w returns where a write runs: the context's transaction, else a
// groupWriter, which gives each statement a transaction of its own in the
// group commit.
func (s *Store) w(ctx context.Context) querier {
	s.wrote.Store(true)
	if st := s.txFrom(ctx); st != nil {
		return st.tx
	}
	return groupWriter{s}
}

// groupWriter runs a write made outside any transaction as an InTx of its
// own, so that it shares a commit, and its fsync, with concurrent writers
// instead of paying one alone: a sign-in makes half a dozen such writes
// (deleting a challenge, a PKCE session, the old browser session). Queries
// go to the writer connection directly, since their rows outlive the call;
// a method whose statement writes and returns rows (DELETE … RETURNING)
// wraps itself in InTx to share a commit too.
type groupWriter struct{ s *Store }

// writeRow runs a write that returns one row (INSERT or DELETE … RETURNING)
// and scans it into dest, in the group commit when ctx carries no
// transaction.
func (s *Store) writeRow(ctx context.Context, query string, args []any, dest ...any) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		return s.w(ctx).QueryRowContext(ctx, query, args...).Scan(dest...)
	})
}

func (g groupWriter) ExecContext(ctx context.Context, query string, args ...any) (res sql.Result, err error) {
	err = g.s.InTx(ctx, func(ctx context.Context) error {
		res, err = g.s.txFrom(ctx).tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

func (g groupWriter) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return g.s.wdb.QueryContext(ctx, query, args...)
}

func (g groupWriter) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return g.s.wdb.QueryRowContext(ctx, query, args...)
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
	m, err := s.joinGroup(ctx)
	if err != nil {
		return err
	}
	returned := false
	defer func() {
		// Runs on return, panic and runtime.Goexit (t.Fatal) alike.
		if !returned {
			err = errRolledBack
		}
		err = m.finish(ctx, err)
	}()
	err = fn(m.context(ctx, false))
	returned = true
	return err
}

// groupMember is one caller's part of the group's open transaction: from
// joinGroup to finish, it holds the group's mutex.
type groupMember struct {
	s         *Store
	tx        *sql.Tx
	outcome   *groupOutcome
	first     bool
	savepoint string
	state     *memberState
	after     *afterTx
	finished  bool
}

// joinGroup waits for the group's transaction, beginning one if none is
// open, and starts this caller's savepoint in it.
func (s *Store) joinGroup(ctx context.Context) (*groupMember, error) {
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
			return nil, wrapErr("begin transaction", err)
		}
		g.tx, g.members, g.outcome = tx, 0, &groupOutcome{done: make(chan struct{})}
	}
	g.members++
	m := &groupMember{
		s: s, tx: g.tx, outcome: g.outcome, first: first,
		savepoint: fmt.Sprintf("m%d", g.members),
		state:     &memberState{}, after: &afterTx{},
	}
	if !first {
		if _, err := m.tx.ExecContext(ctx, "SAVEPOINT "+m.savepoint); err != nil {
			return nil, m.finish(ctx, wrapErr("savepoint", err))
		}
	}
	return m, nil
}

// context returns ctx carrying the member's transaction; owner marks the
// context whose Commit or Rollback finishes the member (BeginTx's).
func (m *groupMember) context(ctx context.Context, owner bool) context.Context {
	st := &txState{tx: m.tx, member: m.state, after: m.after}
	if owner {
		st.owner = m
	}
	return context.WithValue(ctx, txKey{m.s}, st)
}

// finish ends the member: it undoes the member's writes unless err is nil
// and nothing in it asked for a rollback, then commits the group if no one
// else is queued, or else leaves that to the last one and waits for it.
// It returns err, or the commit's error, once the group has committed,
// and then runs the member's after-transaction functions.
func (m *groupMember) finish(ctx context.Context, err error) error {
	if m.finished {
		return err
	}
	m.finished = true
	g, tx, outcome := &m.s.group, m.tx, m.outcome
	defer m.after.run()
	if err == nil && m.state.rolledBack.Load() {
		err = errRolledBack
	}
	ctx = context.WithoutCancel(ctx)
	var serr error
	if !m.first {
		if err != nil {
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO "+m.savepoint); rerr != nil {
				// Some errors (SQLITE_FULL, I/O) end the whole
				// transaction; the commit below then fails for all.
				err = errors.Join(err, wrapErr("rollback to savepoint", rerr))
			}
		}
		_, serr = tx.ExecContext(ctx, "RELEASE "+m.savepoint)
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
	case m.first && err != nil:
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
	return err
}

// BeginTx starts a write transaction and returns a context carrying it,
// for callers that cannot pass a function to InTx (fosite's handlers begin,
// commit and roll back through storage.Transactional). It joins the group
// commit as an InTx call does, and holds it until Commit or Rollback on the
// returned context, which the caller must call once on every path.
//
// On a context already in a transaction it joins that one: Commit on the
// returned context does nothing (the outer owner commits), while Rollback
// undoes the whole transaction (inside InTx: that InTx function's writes),
// so a failure anywhere undoes everything and the owner's Commit then
// reports it.
func (s *Store) BeginTx(ctx context.Context) (context.Context, error) {
	if st := s.txFrom(ctx); st != nil {
		return context.WithValue(ctx, txKey{s}, &txState{tx: st.tx, member: st.member, after: st.after}), nil
	}
	m, err := s.joinGroup(ctx)
	if err != nil {
		return ctx, err
	}
	return m.context(ctx, true), nil
}

var errNoTx = errors.New("no transaction in context")

// Commit commits the transaction ctx carries, or reports why it could not:
// a Rollback on a context joined to it, or the commit's own failure.
func (s *Store) Commit(ctx context.Context) error {
	st := s.txFrom(ctx)
	switch {
	case st == nil:
		return fmt.Errorf("commit: %w", errNoTx)
	case st.owner != nil:
		if st.owner.finished {
			return fmt.Errorf("commit: %w", sql.ErrTxDone)
		}
		return st.owner.finish(ctx, nil)
	}
	return nil
}

// Rollback rolls back the transaction ctx carries. Rolling back a
// transaction that is already finished is not an error, so that a deferred
// Rollback after Commit is harmless.
func (s *Store) Rollback(ctx context.Context) error {
	st := s.txFrom(ctx)
	switch {
	case st == nil:
		return fmt.Errorf("rollback: %w", errNoTx)
	case st.owner != nil:
		if err := st.owner.finish(ctx, errRolledBack); err != nil && !errors.Is(err, errRolledBack) {
			return wrapErr("rollback", err)
		}
		return nil
	}
	// The InTx or BeginTx that owns the savepoint rolls back to it when it
	// ends; other members' writes stay.
	st.member.rolledBack.Store(true)
	return nil
}

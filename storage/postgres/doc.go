// Package postgres is the PostgreSQL implementation of storage.Store, for
// running several keygate replicas on one database. It owns the database's
// keygate schema: the numbered, embedded migrations applied at Open (with
// the same numbers and meaning as storage/sqlite's), the mapping of rows to
// the storage value types, and the translation of server errors into the
// storage sentinel errors (errors.go). It passes the same conformance suite
// as storage/sqlite. It is built on pgx's native API and its pool
// (pgxpool): database/sql would add a layer of its own pool and value
// conversion, and hide the typed server errors, batches and row locks
// behind it for nothing in return.
//
// # Transactions
//
// As storage.Transactor documents, a transaction travels in the context.
// Every method runs on the context's transaction when there is one, and
// otherwise on the pool, where each statement commits on its own. Nested
// InTx and BeginTx join the outer transaction; a Rollback on a joined
// context ends the whole transaction, and the owner's Commit reports it. A
// transaction's context is for one goroutine at a time (a pgx connection
// runs one statement at a time).
//
// A failed statement ends a PostgreSQL transaction: every later statement
// and the commit fail. SQLite rolls back only the statement, and callers
// go on after an expected answer (adding a member who is one already, say).
// So the methods answer ErrAlreadyExists, ErrNotFound and ErrConflict
// without an error in the database: inserts are conditional (ON CONFLICT
// DO NOTHING, and a referenced row checked in the same statement) and
// report by row count, and only then does a second query tell which
// answer applies.
//
// # Concurrency
//
// Transactions run at READ COMMITTED, with row locks where an answer
// depends on a row another transaction may change. This is the whole
// story across processes as much as goroutines: the one thing a Store
// holds in memory between calls is its client cache, which follows every
// replica's writes (below), so replicas on one database need nothing
// more.
//
//   - A conditional write is one statement (UPDATE … WHERE last_step < $2,
//     DELETE … RETURNING): a concurrent one waits for the row lock and
//     re-checks its condition on the row as the first left it, so exactly
//     one of them wins (UseTOTPStep, ConsumeEnrollment, ConsumeChallenge,
//     UseRecoveryCode, MarkRotated, …).
//   - A read-modify-write (UpdateUser, UpdateClient, UpdateFlow,
//     UpdateGroup) reads the row FOR UPDATE: concurrent updates queue, and
//     each closure sees the last one's result, so it runs once.
//   - Inside a transaction a read of one row by key locks it until the
//     transaction ends (see lock in tx.go): users, clients, groups and
//     memberships FOR KEY SHARE, which many readers hold at once and only
//     their updates and deletes wait for; rows read in order to be changed
//     (tokens, sessions, flows, credentials) FOR UPDATE. So a token request
//     that checks its user, app and group is ordered with a suspension, a
//     disabling or a removal, as SQLite's single writer orders them: the
//     kill that locks first wins, and the other sees its result.
//   - Sessions are written only if their user exists and is not suspended,
//     checked in the same statement with the user's row locked FOR SHARE.
//   - Revocations and the tokens being issued are ordered with advisory
//     locks (see tokens.go), so a revocation never misses a token that a
//     concurrent transaction issues under its key.
//   - The audit log is one hash chain: an append locks the chain head row
//     until its transaction ends (see audit.go), so appends from every
//     replica link in commit order; triggers keep the log append-only.
//   - ClaimOutbox picks due messages FOR UPDATE SKIP LOCKED and leases
//     them (moves their next attempt) in the same statement: replicas
//     claiming at once take different messages, none waits for another,
//     and a message whose deliverer died is claimed again after its
//     lease.
//   - RunExclusive (storage.Exclusive) runs a periodic job (garbage
//     collection) under a session-level advisory lock, held on a
//     connection of its own for the job: a replica that finds it taken
//     skips the round, and a dead replica's lock goes with its
//     connection; the job's context ends if that connection breaks (see
//     exclusive.go).
//   - Migrations take an advisory lock, so replicas may start at once.
//
// Reads of a client outside a transaction are served from a cache
// (storage/internal/clientcache), so that introspection and token
// requests do not read the row each time. Writes to a client or to the
// signing keys send a notice with NOTIFY from their own statement, which
// PostgreSQL delivers when their transaction commits and only then; each
// Store LISTENs on a connection of its own, drops the client a notice
// names, and reports the change to its watchers (storage.ChangeWatcher),
// so that the server reloads its keyring when another replica rotates
// the keys. While the listening connection is down nothing is cached or
// served from the cache, and it listens again from an empty cache,
// telling watchers that anything may have changed (see changes.go). A
// notice reaches another replica a moment after the commit: a read there
// in between may still see the old client, which is why writes that
// issue tokens re-read the client in their transaction.
//
// The listener and RunExclusive need connections that are the server's
// sessions: behind a pooler in transaction mode (PgBouncer's
// pool_mode=transaction) LISTEN hears nothing and a session's advisory
// lock is not its own, so keygate connects to PostgreSQL itself or to a
// pool in session mode.
//
// Two transactions can still wait for each other (each holding a row the
// other wants): a suspension locks the user, then the tokens, while a
// refresh in flight has locked its token, then wants the user. The server
// then rolls one back. InTx runs its function again in a new transaction
// (up to five times in all), so a kill action is not refused for being
// busy; a statement outside InTx, or a transaction from BeginTx (fosite's
// token requests), answers storage.ErrConflict, and the client tries
// again.
//
// # Conventions
//
// Times are timestamptz: they come back in UTC, truncated to the
// microsecond, as from SQLite, with NULL for the zero time. A NULL
// ExpiresAt means "already expired" for enrolments, sessions, flows and
// WebAuthn challenges, but "never" for token records. String lists are
// text[] (an empty one reads back as nil), audit details JSON text.
// PostgreSQL's text refuses a NUL byte and invalid UTF-8, which SQLite
// stores as given: such a value fails its write with an error.
//
// Backup refuses: a PostgreSQL database is backed up with pg_dump or by
// continuous archiving, which keygate does not replace.
package postgres

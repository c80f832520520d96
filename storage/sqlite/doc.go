// Package sqlite is the SQLite implementation of storage.Store, the only
// backend keygate ships. It owns the database file: its schema (the
// numbered, embedded migrations applied at Open), the mapping of rows to the
// storage value types, and the translation of driver errors into the
// storage sentinel errors.
//
// # Two pools
//
// SQLite allows one writer at a time per file. Rather than let many
// connections race for the write lock and spin on SQLITE_BUSY, the Store
// keeps every write on a pool of exactly one connection: writers queue in
// Go, cheaply, in the group commit. Reads outside a transaction go to
// a separate pool of query-only connections which, thanks to WAL mode, never
// wait for the writer nor block it. A third connection only checkpoints the
// WAL in the background (checkpoint.go).
//
// Write transactions begin with BEGIN IMMEDIATE (the _txlock=immediate DSN
// parameter). A deferred transaction that reads first and writes later has
// to upgrade its lock mid-way, and when another process (the keygate CLI,
// say) holds it, SQLite can only fail the upgrade with SQLITE_BUSY, because
// waiting could deadlock. Taking the write lock up front lets busy_timeout
// do its job instead.
//
// # Transactions
//
// As storage.Transactor documents, a transaction travels in the context.
// Every method uses the context's transaction when there is one, and
// otherwise the reader pool for reads and the writer for writes; a
// single-statement write needs no explicit transaction. Nested InTx and
// BeginTx join the outer transaction.
//
// Concurrent InTx calls share commits: each runs in turn under its own
// savepoint inside one transaction, and the last caller in line commits
// for all (see groupCommit). Under load that turns a dozen commits into
// one, while every caller keeps all-or-nothing for its own writes and
// returns only after they are committed. BeginTx joins the group the same
// way, and so does every write made outside a transaction (groupWriter,
// writeRow): with synchronous=FULL a commit costs an fsync, and a sign-in
// that paid one per statement paid eight.
//
// A transaction holds the one write connection until it ends. So while a
// goroutine has a transaction open, it must pass that transaction's
// context to every write: a write with another context (a detached one
// for an audit event, say) waits for the writer, which waits for the
// goroutine — a deadlock that lasts until the other context is done.
// Reads with another context are fine; they see committed data only.
//
// # Conventions
//
// Timestamps are stored as INTEGER unix microseconds, UTC, with 0 for the
// zero time: times come back in UTC and truncated to the microsecond.
// A zero ExpiresAt means "already expired" for enrolments, sessions, flows
// and WebAuthn challenges (they fail closed), but "never" for token
// records, so the expiry sweep cannot delete a record someone forgot to
// give a lifetime.
//
// Prepared statements are cached per connection by the driver
// (_stmt_cache_size), so every query, hot or not and inside a transaction
// or not, is compiled once per connection and then reused.
package sqlite

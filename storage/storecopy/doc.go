// Package storecopy moves a keygate store from SQLite to PostgreSQL: it
// copies every row of a SQLite database into an empty PostgreSQL database
// at the same schema version, in one PostgreSQL transaction.
//
// The two backends' migrations are numbered alike and mean the same, but
// spell the schema each in their own types: a time is unix microseconds
// (0 for none) in SQLite and a timestamptz (NULL for none) in PostgreSQL, a
// flag an INTEGER 0/1 or a boolean, a list a JSON array in TEXT or a
// text[]. The copy does not name tables or columns: it reads both schemas,
// requires every table and column to exist on both sides with types that
// pair up (schema.go), and converts each value by its pair (convert.go).
// A table or column that does not line up — a migration one backend has
// and the other has not — stops the copy before anything is written, so
// nothing is ever copied in part.
//
// Values are copied as they are. Sealed secrets and signing keys stay
// sealed under the master key they were sealed with; the audit log keeps
// its sequence numbers and hashes, so its chain verifies on the copy: the
// copy recomputes every event's hash as it goes (audit.go), and commits
// no chain that does not verify. A value
// PostgreSQL cannot hold — text with a NUL byte or invalid UTF-8, which
// SQLite stores as given — stops the copy with an error naming the table,
// the row's key and the column: the copy never changes a value.
//
// The source is read in one read transaction, a consistent snapshot even
// while keygate serve writes to the file. The target is written in one
// transaction that first locks every table against writers, so a failure
// leaves it as empty as it was, and a keygate started on it meanwhile
// waits for the copy instead of writing beside it.
package storecopy

// Package storage defines what keygate keeps and the contract every backend
// honours: small role interfaces composed into Store, plain value types, the
// sentinel errors ErrNotFound, ErrAlreadyExists and ErrConflict, and one
// transaction mechanism — a context that carries the transaction (see
// Transactor). fosite can only hand a context from BeginTX to Commit, so we
// made that the only way, for our code as much as for fosite's.
//
// It also owns the audit hash chain (AuditHash, ChainVerifier) so that a
// backend and `keygate audit verify` compute it the same way.
//
// A backend that several keygate processes share (replicas on one
// PostgreSQL database) offers more, which the server asks for by type
// assertion (replicas.go): Exclusive runs a periodic job on one process at
// a time, and ChangeWatcher reports changes other processes made, so that
// what a process holds in memory (the keyring) follows them at once.
//
// It imports nothing but the standard library; storage/sqlite and
// storage/postgres implement it, and storage/conformance is the suite any
// backend must pass.
package storage

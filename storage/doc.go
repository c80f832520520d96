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
// It imports nothing but the standard library; storage/sqlite implements it
// and storage/conformance is the suite any backend must pass.
package storage

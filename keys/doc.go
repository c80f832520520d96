// Package keys owns keygate's key material: the master key, envelope
// encryption of secrets at rest, purpose keys derived from the master key,
// the JWT signing keys with their rotation and JWKS, and the keyed hash for
// client secrets. It depends on storage only through the narrow Store
// interface (storage.SigningKeys and storage.Transactor).
//
// # Master key
//
// The master key is 32 random bytes, taken from KEYGATE_MASTER_KEY or from
// the file master.key in the data directory (created on first start, mode
// 0600). It never leaves this package: everything else gets either a sealed
// value (Seal/Open) or a purpose key (Derive). Losing it makes every sealed
// value (TOTP seeds, signing keys) unreadable; it is not stored in the
// database, so a copy of the database alone reveals no secret.
//
// Derive expands the master key with HKDF-SHA256 into independent keys per
// purpose ("fosite-hmac", "client-secret", "cookie", "recovery-code", ...).
// Knowing one purpose key tells nothing about another or about the master.
// The AES key used by Seal is itself such a derived key, under a label that
// Derive's callers cannot produce, so no key is used by two primitives.
//
// # Sealed values and AAD
//
// Seal encrypts with AES-256-GCM and returns version || nonce || ciphertext.
// The aad argument is authenticated but not stored; it names the row the
// value belongs to ("totp:"+userID, "signing-key:"+kid). Encryption alone
// only stops someone who can read the database; someone who can also write
// it could copy user A's sealed TOTP seed into user B's row and then sign in
// as B with A's authenticator. Because the row's identity is part of the
// authenticated data, a value moved to another row fails to open instead of
// being silently accepted.
//
// # Client secrets: HMAC, not bcrypt
//
// Passwords are chosen by people, have little entropy and must be hashed
// slowly (argon2id) so that a stolen hash cannot be guessed. Client secrets
// are different: keygate generates them (NewSecret, 256 random bits), so
// guessing is hopeless whatever the hash costs. A slow hash would protect
// nothing and would cost ~250ms of CPU on every token request. SecretHasher
// therefore stores HMAC-SHA256 under a key derived from the master key: fast,
// compared in constant time, and useless to someone who has the database but
// not the master key.
//
// # Signing keys, rotation and JWKS
//
// There is one active key per algorithm (ES256, the default, and RS256 for
// relying parties that only support RSA). The private key is stored as
// PKCS#8 sealed under the master key with AAD "signing-key:"+kid; the public
// JWK is stored in the clear. The kid is derived from the key itself (the
// first 16 bytes of its RFC 7638 SHA-256 thumbprint), so a kid always names
// exactly one key.
//
// Rotate retires the active keys and creates new ones in one transaction.
// A retired key no longer signs, but it stays in the JWKS for the retention
// period: ID tokens and JWT access tokens signed just before the rotation
// are still valid until they expire, and relying parties verify them by
// looking up their kid in the JWKS. Dropping the key at once would make
// every outstanding token fail verification. Retention should therefore be
// at least the longest token lifetime plus allowed clock skew; after it,
// the key is left out of the JWKS and deleted at the next rotation.
//
// A Set is an immutable snapshot of the keys, with the JWKS document
// marshalled once. A Keyring holds the current Set behind an atomic pointer
// so request handlers never lock, and Reload picks up rotations made by
// another process (the `keygate keys rotate` command).
package keys

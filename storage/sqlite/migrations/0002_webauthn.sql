-- 0002_webauthn: security keys and passkeys, and their ceremonies' challenges.
--
-- Released migrations are never edited; see 0001_initial.sql for why and
-- for the conventions (STRICT tables, INTEGER unix microseconds with 0 for
-- "never", JSON text lists).

-- A credential belongs to its user and goes with it. Its id is the one the
-- authenticator chose, unique across all users. disabled_at 0: usable.
CREATE TABLE webauthn_credential (
    id                 BLOB    NOT NULL PRIMARY KEY,
    user_id            TEXT    NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    name               TEXT    NOT NULL DEFAULT '',
    aaguid             BLOB,                       -- 16 zero bytes: not disclosed
    public_key         BLOB,                       -- COSE-encoded
    attestation_type   TEXT    NOT NULL DEFAULT '',
    attestation_format TEXT    NOT NULL DEFAULT '',
    attested           INTEGER NOT NULL DEFAULT 0,
    transports         TEXT    NOT NULL DEFAULT '[]',
    sign_count         INTEGER NOT NULL DEFAULT 0, -- a uint32
    backup_eligible    INTEGER NOT NULL DEFAULT 0,
    backup_state       INTEGER NOT NULL DEFAULT 0,
    discoverable       INTEGER NOT NULL DEFAULT 0,
    attachment         TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL DEFAULT 0,
    last_used_at       INTEGER NOT NULL DEFAULT 0,
    disabled_at        INTEGER NOT NULL DEFAULT 0,
    disabled_reason    TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX webauthn_credential_user_id ON webauthn_credential (user_id);
CREATE INDEX webauthn_credential_aaguid ON webauthn_credential (aaguid);

-- A challenge lives for minutes and outlives nothing it refers to: user_id
-- is '' for a username-less sign-in, so it carries no foreign key, and one
-- left behind by a deleted user expires and is swept like any other.
-- expires_at 0 means already expired.
CREATE TABLE webauthn_challenge (
    id           TEXT    NOT NULL PRIMARY KEY,
    session_hash BLOB,
    user_id      TEXT    NOT NULL DEFAULT '',
    kind         TEXT    NOT NULL DEFAULT '',
    flow_id      TEXT    NOT NULL DEFAULT '',
    data         BLOB,
    created_at   INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX webauthn_challenge_expires_at ON webauthn_challenge (expires_at);

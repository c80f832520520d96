-- 0002_webauthn: security keys and passkeys, and their ceremonies'
-- challenges.
--
-- Released migrations are never edited; see 0001_initial.sql for why and
-- for the conventions.

-- A credential belongs to its user and goes with it. Its id is the one the
-- authenticator chose, unique across all users. disabled_at NULL: usable.
CREATE TABLE webauthn_credential (
    id                 bytea       NOT NULL PRIMARY KEY,
    user_id            text        NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    name               text        NOT NULL DEFAULT '',
    aaguid             bytea,                     -- 16 zero bytes: not disclosed
    public_key         bytea,                     -- COSE-encoded
    attestation_type   text        NOT NULL DEFAULT '',
    attestation_format text        NOT NULL DEFAULT '',
    attested           boolean     NOT NULL DEFAULT false,
    transports         text[]      NOT NULL DEFAULT '{}',
    sign_count         bigint      NOT NULL DEFAULT 0, -- a uint32
    backup_eligible    boolean     NOT NULL DEFAULT false,
    backup_state       boolean     NOT NULL DEFAULT false,
    discoverable       boolean     NOT NULL DEFAULT false,
    attachment         text        NOT NULL DEFAULT '',
    created_at         timestamptz,
    last_used_at       timestamptz,
    disabled_at        timestamptz,
    disabled_reason    text        NOT NULL DEFAULT ''
);
CREATE INDEX webauthn_credential_user_id ON webauthn_credential (user_id);
CREATE INDEX webauthn_credential_aaguid ON webauthn_credential (aaguid);

-- A challenge lives for minutes and outlives nothing it refers to: user_id
-- is '' for a username-less sign-in, so it carries no foreign key.
-- expires_at NULL means already expired.
CREATE TABLE webauthn_challenge (
    id           text        NOT NULL PRIMARY KEY,
    session_hash bytea,
    user_id      text        NOT NULL DEFAULT '',
    kind         text        NOT NULL DEFAULT '',
    flow_id      text        NOT NULL DEFAULT '',
    data         bytea,
    created_at   timestamptz,
    expires_at   timestamptz
);
CREATE INDEX webauthn_challenge_expires_at ON webauthn_challenge (expires_at);

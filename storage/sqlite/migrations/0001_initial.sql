-- 0001_initial: keygate's first schema.
--
-- Released migrations are never edited: a database that already ran this
-- file will not run it again, so a change here would silently split the
-- schema in two. Change the schema by adding the next numbered file.
--
-- Conventions: singular snake_case table names; ids are TEXT; timestamps
-- are INTEGER unix microseconds UTC with 0 for "never"; string lists and
-- maps are JSON text; durations are INTEGER nanoseconds (time.Duration).
-- Tables are STRICT so a wrongly typed bind fails instead of being stored.

CREATE TABLE user (
    id            TEXT    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE, -- lower-case
    name          TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL DEFAULT '',
    admin         INTEGER NOT NULL DEFAULT 0,
    suspended_at  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Credentials belong to their user and go with it.

CREATE TABLE enrollment (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL DEFAULT 0,
    used_at    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX enrollment_user_id ON enrollment (user_id);

CREATE TABLE totp_credential (
    user_id      TEXT    NOT NULL PRIMARY KEY REFERENCES user (id) ON DELETE CASCADE,
    sealed       BLOB,
    last_step    INTEGER NOT NULL DEFAULT 0,
    confirmed_at INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE recovery_code (
    user_id   TEXT    NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    code_hash BLOB    NOT NULL,
    used_at   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, code_hash)
) STRICT, WITHOUT ROWID;

CREATE TABLE client (
    id                        TEXT    NOT NULL PRIMARY KEY,
    name                      TEXT    NOT NULL DEFAULT '',
    secret_hash               BLOB,                       -- NULL: public client
    redirect_uris             TEXT    NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT    NOT NULL DEFAULT '[]',
    grant_types               TEXT    NOT NULL DEFAULT '[]',
    response_types            TEXT    NOT NULL DEFAULT '[]',
    scopes                    TEXT    NOT NULL DEFAULT '[]',
    audience                  TEXT    NOT NULL DEFAULT '[]',
    public                    INTEGER NOT NULL DEFAULT 0,
    min_acr                   TEXT    NOT NULL DEFAULT '',
    max_auth_age              INTEGER NOT NULL DEFAULT 0, -- nanoseconds
    token_format              TEXT    NOT NULL DEFAULT '',
    backchannel_logout_uri    TEXT    NOT NULL DEFAULT '',
    disabled                  INTEGER NOT NULL DEFAULT 0,
    created_at                INTEGER NOT NULL DEFAULT 0,
    updated_at                INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Sessions outlive nothing they refer to: user_id is '' before sign-in, so
-- it carries no foreign key, and deleting a user leaves ending its sessions
-- (and learning their SIDs for back-channel logout) to the caller.
CREATE TABLE browser_session (
    id_hash      BLOB    NOT NULL PRIMARY KEY,
    sid          TEXT    NOT NULL DEFAULT '',
    user_id      TEXT    NOT NULL DEFAULT '',
    data         BLOB,
    ip           TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL DEFAULT 0,
    last_seen_at INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX browser_session_user_id ON browser_session (user_id);
CREATE INDEX browser_session_expires_at ON browser_session (expires_at);

CREATE TABLE flow (
    id           TEXT    NOT NULL PRIMARY KEY,
    session_hash BLOB,
    client_id    TEXT    NOT NULL DEFAULT '',
    query        TEXT    NOT NULL DEFAULT '',
    state        TEXT    NOT NULL DEFAULT '',
    user_id      TEXT    NOT NULL DEFAULT '',
    required_acr TEXT    NOT NULL DEFAULT '',
    max_age      INTEGER NOT NULL DEFAULT 0, -- nanoseconds; negative: none requested
    force_login  INTEGER NOT NULL DEFAULT 0,
    acr          TEXT    NOT NULL DEFAULT '',
    amr          TEXT    NOT NULL DEFAULT '[]',
    auth_time    INTEGER NOT NULL DEFAULT 0,
    reasons      TEXT    NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX flow_expires_at ON flow (expires_at);

-- token is the hottest table: one row per code, access token, refresh
-- token, PKCE and OIDC session and PAR. Rows carry a serialised request of
-- a kilobyte or so, which is why it keeps its rowid (WITHOUT ROWID suits
-- small rows only). expires_at 0 means the record does not expire.
CREATE TABLE token (
    kind             TEXT    NOT NULL,
    signature        TEXT    NOT NULL,
    request_id       TEXT    NOT NULL DEFAULT '',
    client_id        TEXT    NOT NULL DEFAULT '',
    subject          TEXT    NOT NULL DEFAULT '',
    sid              TEXT    NOT NULL DEFAULT '',
    active           INTEGER NOT NULL DEFAULT 1,
    rotated_at       INTEGER NOT NULL DEFAULT 0,
    access_signature TEXT    NOT NULL DEFAULT '',
    request          BLOB,
    requested_at     INTEGER NOT NULL DEFAULT 0,
    expires_at       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, signature)
) STRICT;
CREATE INDEX token_request_id ON token (request_id);
CREATE INDEX token_subject ON token (subject);
CREATE INDEX token_sid ON token (sid);
CREATE INDEX token_expires_at ON token (expires_at);

-- audit_event is append-only and hash-chained: seq is the rowid, assigned
-- by the store as the previous maximum plus one. The triggers below make
-- the database itself refuse to change or remove an event, so a stray
-- statement fails loudly instead of breaking the chain.
CREATE TABLE audit_event (
    seq        INTEGER NOT NULL PRIMARY KEY,
    time       INTEGER NOT NULL DEFAULT 0,
    type       TEXT    NOT NULL DEFAULT '',
    actor      TEXT    NOT NULL DEFAULT '',
    user_id    TEXT    NOT NULL DEFAULT '',
    client_id  TEXT    NOT NULL DEFAULT '',
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    result     TEXT    NOT NULL DEFAULT '',
    details    TEXT,                 -- JSON object; NULL when empty
    prev_hash  BLOB,                 -- NULL for the first event
    hash       BLOB    NOT NULL
) STRICT;
CREATE INDEX audit_event_user_id ON audit_event (user_id);
CREATE INDEX audit_event_client_id ON audit_event (client_id);

CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END;

CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END;

-- INSERT OR REPLACE deletes the row it collides with without firing
-- delete triggers, so an insert over an existing seq is refused as well.
CREATE TRIGGER audit_event_no_replace BEFORE INSERT ON audit_event
WHEN EXISTS (SELECT 1 FROM audit_event WHERE seq = NEW.seq)
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only');
END;

-- AUTOINCREMENT so an id is never reused, even after rows are removed by
-- hand: a delivery log naming message 42 keeps meaning one message.
CREATE TABLE outbox_message (
    id              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL DEFAULT '',
    target          TEXT    NOT NULL DEFAULT '',
    payload         BLOB,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL DEFAULT 0,
    delivered_at    INTEGER NOT NULL DEFAULT 0
) STRICT;
-- Only undelivered messages are ever polled; DueOutbox's WHERE repeats
-- "delivered_at = 0" verbatim so the planner can use this partial index.
CREATE INDEX outbox_message_due ON outbox_message (next_attempt_at) WHERE delivered_at = 0;

CREATE TABLE signing_key (
    kid        TEXT    NOT NULL PRIMARY KEY,
    alg        TEXT    NOT NULL,
    sealed     BLOB,
    public_jwk BLOB,
    created_at INTEGER NOT NULL DEFAULT 0,
    retired_at INTEGER NOT NULL DEFAULT 0 -- 0: the active key for its alg
) STRICT;

CREATE TABLE attempt (
    scope TEXT    NOT NULL,
    key   TEXT    NOT NULL,
    at    INTEGER NOT NULL
) STRICT;
CREATE INDEX attempt_scope_key_at ON attempt (scope, key, at);
CREATE INDEX attempt_at ON attempt (at);

CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

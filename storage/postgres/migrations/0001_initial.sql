-- 0001_initial: keygate's first schema, with the meaning of SQLite's
-- 0001_initial.sql, so that schema version N means the same on both
-- backends.
--
-- Released migrations are never edited: a database that already ran this
-- file will not run it again, so a change here would silently split the
-- schema in two. Change the schema by adding the next numbered file, here
-- and in storage/sqlite/migrations under the same number.
--
-- Conventions: singular snake_case table names ("user" is quoted: it is a
-- reserved word); ids are text; timestamps are timestamptz (UTC,
-- microseconds) with NULL for "never" (the zero time.Time); string lists
-- are text[], maps JSON text; durations are bigint nanoseconds
-- (time.Duration); booleans are boolean.

CREATE TABLE "user" (
    id            text        NOT NULL PRIMARY KEY,
    email         text        COLLATE "C" NOT NULL UNIQUE, -- lower-case
    name          text        NOT NULL DEFAULT '',
    password_hash text        NOT NULL DEFAULT '',
    admin         boolean     NOT NULL DEFAULT false,
    suspended_at  timestamptz,
    created_at    timestamptz,
    updated_at    timestamptz
);

-- Credentials belong to their user and go with it.

CREATE TABLE enrollment (
    token_hash bytea       NOT NULL PRIMARY KEY,
    user_id    text        NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    created_at timestamptz,
    expires_at timestamptz,
    used_at    timestamptz
);
CREATE INDEX enrollment_user_id ON enrollment (user_id);

CREATE TABLE totp_credential (
    user_id      text        NOT NULL PRIMARY KEY REFERENCES "user" (id) ON DELETE CASCADE,
    sealed       bytea,
    last_step    bigint      NOT NULL DEFAULT 0,
    confirmed_at timestamptz,
    created_at   timestamptz
);

CREATE TABLE recovery_code (
    user_id   text        NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    code_hash bytea       NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE client (
    id                        text    NOT NULL PRIMARY KEY,
    name                      text    NOT NULL DEFAULT '',
    secret_hash               bytea,                        -- NULL: public client
    redirect_uris             text[]  NOT NULL DEFAULT '{}',
    post_logout_redirect_uris text[]  NOT NULL DEFAULT '{}',
    grant_types               text[]  NOT NULL DEFAULT '{}',
    response_types            text[]  NOT NULL DEFAULT '{}',
    scopes                    text[]  NOT NULL DEFAULT '{}',
    audience                  text[]  NOT NULL DEFAULT '{}',
    public                    boolean NOT NULL DEFAULT false,
    min_acr                   text    NOT NULL DEFAULT '',
    max_auth_age              bigint  NOT NULL DEFAULT 0,    -- nanoseconds
    token_format              text    NOT NULL DEFAULT '',
    backchannel_logout_uri    text    NOT NULL DEFAULT '',
    disabled                  boolean NOT NULL DEFAULT false,
    created_at                timestamptz,
    updated_at                timestamptz
);

-- Sessions outlive nothing they refer to: user_id is '' before sign-in, so
-- it carries no foreign key, and deleting a user leaves ending its sessions
-- (and learning their SIDs for back-channel logout) to the caller.
CREATE TABLE browser_session (
    id_hash      bytea       NOT NULL PRIMARY KEY,
    sid          text        NOT NULL DEFAULT '',
    user_id      text        NOT NULL DEFAULT '',
    data         bytea,
    ip           text        NOT NULL DEFAULT '',
    user_agent   text        NOT NULL DEFAULT '',
    created_at   timestamptz,
    last_seen_at timestamptz,
    expires_at   timestamptz -- NULL: already expired
);
CREATE INDEX browser_session_user_id ON browser_session (user_id);
CREATE INDEX browser_session_expires_at ON browser_session (expires_at);

CREATE TABLE flow (
    id           text        NOT NULL PRIMARY KEY,
    session_hash bytea,
    client_id    text        NOT NULL DEFAULT '',
    query        text        NOT NULL DEFAULT '',
    state        text        NOT NULL DEFAULT '',
    user_id      text        NOT NULL DEFAULT '',
    required_acr text        NOT NULL DEFAULT '',
    max_age      bigint      NOT NULL DEFAULT 0, -- nanoseconds; negative: none requested
    force_login  boolean     NOT NULL DEFAULT false,
    acr          text        NOT NULL DEFAULT '',
    amr          text[]      NOT NULL DEFAULT '{}',
    auth_time    timestamptz,
    reasons      text[]      NOT NULL DEFAULT '{}',
    created_at   timestamptz,
    expires_at   timestamptz -- NULL: already expired
);
CREATE INDEX flow_expires_at ON flow (expires_at);

-- token is the hottest table: one row per code, access token, refresh
-- token, PKCE and OIDC session and PAR. expires_at NULL means the record
-- does not expire.
CREATE TABLE token (
    kind             text        NOT NULL,
    signature        text        NOT NULL,
    request_id       text        NOT NULL DEFAULT '',
    client_id        text        NOT NULL DEFAULT '',
    subject          text        NOT NULL DEFAULT '',
    sid              text        NOT NULL DEFAULT '',
    active           boolean     NOT NULL DEFAULT true,
    rotated_at       timestamptz,
    access_signature text        NOT NULL DEFAULT '',
    request          bytea,
    requested_at     timestamptz,
    expires_at       timestamptz,
    PRIMARY KEY (kind, signature)
);
CREATE INDEX token_request_id ON token (request_id);
CREATE INDEX token_subject ON token (subject);
CREATE INDEX token_sid ON token (sid);
CREATE INDEX token_expires_at ON token (expires_at);

-- audit_event is append-only and hash-chained. audit_head holds the newest
-- event's seq and hash: an append locks it (SELECT … FOR UPDATE) to learn
-- its predecessor, and holds the lock until its transaction ends, so
-- appends from every connection and process queue in commit order. The
-- insert trigger checks that each event links to the head and moves the
-- head forward, so the chain and its head cannot drift apart; other
-- triggers make the database refuse to change or remove an event, or to
-- move the head by hand, whoever runs the statement.
CREATE TABLE audit_event (
    seq        bigint      NOT NULL PRIMARY KEY,
    time       timestamptz NOT NULL,
    type       text        NOT NULL DEFAULT '',
    actor      text        NOT NULL DEFAULT '',
    user_id    text        NOT NULL DEFAULT '',
    client_id  text        NOT NULL DEFAULT '',
    ip         text        NOT NULL DEFAULT '',
    user_agent text        NOT NULL DEFAULT '',
    result     text        NOT NULL DEFAULT '',
    details    text,                 -- JSON object; NULL when empty
    prev_hash  bytea,                -- NULL for the first event
    hash       bytea       NOT NULL
);
CREATE INDEX audit_event_user_id ON audit_event (user_id);
CREATE INDEX audit_event_client_id ON audit_event (client_id);

CREATE TABLE audit_head (
    id   integer NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  bigint  NOT NULL,
    hash bytea
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, NULL);

CREATE FUNCTION audit_event_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head audit_head%ROWTYPE;
BEGIN
    SELECT * INTO head FROM audit_head WHERE id = 1 FOR UPDATE;
    IF NEW.seq <> head.seq + 1 OR NEW.prev_hash IS DISTINCT FROM head.hash THEN
        RAISE EXCEPTION 'audit_event % does not follow the chain head %', NEW.seq, head.seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
    RETURN NEW;
END
$$;

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The head moves only from audit_event_link, a trigger (depth 2).
    IF TG_TABLE_NAME = 'audit_head' AND TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER audit_event_link BEFORE INSERT ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_link();
CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_head_no_change BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- An identity column, so an id is never reused: a delivery log naming
-- message 42 keeps meaning one message.
CREATE TABLE outbox_message (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text        NOT NULL DEFAULT '',
    target          text        NOT NULL DEFAULT '',
    payload         bytea,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz,
    delivered_at    timestamptz
);
-- Only undelivered messages are ever polled.
CREATE INDEX outbox_message_due ON outbox_message (next_attempt_at) WHERE delivered_at IS NULL;

CREATE TABLE signing_key (
    kid        text        NOT NULL PRIMARY KEY,
    alg        text        NOT NULL,
    sealed     bytea,
    public_jwk bytea,
    created_at timestamptz,
    retired_at timestamptz -- NULL: the active key for its alg
);

CREATE TABLE attempt (
    scope text        NOT NULL,
    key   text        NOT NULL,
    at    timestamptz
);
CREATE INDEX attempt_scope_key_at ON attempt (scope, key, at);
CREATE INDEX attempt_at ON attempt (at);

CREATE TABLE meta (
    key   text NOT NULL PRIMARY KEY,
    value text NOT NULL
);

-- 0003_risk: what the risk engine remembers of past sign-ins — the devices
-- a user signs in from and the sign-ins themselves.
--
-- Released migrations are never edited; see 0001_initial.sql for why and
-- for the conventions (STRICT tables, INTEGER unix microseconds with 0 for
-- "never", JSON text lists).

-- One row per user and device: the same device cookie used by two users is
-- two rows, each with its own history. Both go with their user. Rows are
-- small, so the table is clustered on its key; the index serves "most
-- recently seen first".
CREATE TABLE device (
    user_id      TEXT    NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    id           TEXT    NOT NULL,
    user_agent   TEXT    NOT NULL DEFAULT '', -- a short family: "Chrome on Linux"
    first_seen   INTEGER NOT NULL DEFAULT 0,
    last_seen    INTEGER NOT NULL DEFAULT 0,
    last_ip      TEXT    NOT NULL DEFAULT '',
    last_country TEXT    NOT NULL DEFAULT '',
    sign_ins     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX device_user_id_last_seen ON device (user_id, last_seen);

-- One row per successful sign-in, appended and never updated. AUTOINCREMENT
-- so an id is never reused after the retention sweep removes old rows: an
-- admin's note about sign-in 42 keeps meaning one sign-in. lat and lon are
-- meaningful only when has_coords is 1. reasons is the risk engine's
-- reasons, a JSON list of plain-word strings.
CREATE TABLE signin (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT    NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    time       INTEGER NOT NULL DEFAULT 0,
    ip         TEXT    NOT NULL DEFAULT '',
    country    TEXT    NOT NULL DEFAULT '',
    city       TEXT    NOT NULL DEFAULT '',
    lat        REAL    NOT NULL DEFAULT 0,
    lon        REAL    NOT NULL DEFAULT 0,
    has_coords INTEGER NOT NULL DEFAULT 0,
    device_id  TEXT    NOT NULL DEFAULT '',
    client_id  TEXT    NOT NULL DEFAULT '',
    acr        TEXT    NOT NULL DEFAULT '',
    decision   TEXT    NOT NULL DEFAULT '',
    reasons    TEXT    NOT NULL DEFAULT '[]'
) STRICT;
-- A user's history, newest first (and the cascade on user delete).
CREATE INDEX signin_user_id_time ON signin (user_id, time);
-- The retention sweep's age cut, so it never scans the whole table while
-- holding the write lock.
CREATE INDEX signin_time ON signin (time);

-- 0003_risk: what the risk engine remembers of past sign-ins — the devices
-- a user signs in from and the sign-ins themselves.
--
-- Released migrations are never edited; see 0001_initial.sql for why and
-- for the conventions.

-- One row per user and device: the same device cookie used by two users is
-- two rows, each with its own history. Both go with their user.
CREATE TABLE device (
    user_id      text        NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    id           text        COLLATE "C" NOT NULL,
    user_agent   text        NOT NULL DEFAULT '', -- a short family: "Chrome on Linux"
    first_seen   timestamptz,
    last_seen    timestamptz,
    last_ip      text        NOT NULL DEFAULT '',
    last_country text        NOT NULL DEFAULT '',
    sign_ins     integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX device_user_id_last_seen ON device (user_id, last_seen);

-- One row per successful sign-in, appended and never updated. An identity
-- column, so an id is never reused after the retention sweep removes old
-- rows. lat and lon are meaningful only when has_coords is true.
CREATE TABLE signin (
    id         bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text             NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    time       timestamptz,
    ip         text             NOT NULL DEFAULT '',
    country    text             COLLATE "C" NOT NULL DEFAULT '',
    city       text             NOT NULL DEFAULT '',
    lat        double precision NOT NULL DEFAULT 0,
    lon        double precision NOT NULL DEFAULT 0,
    has_coords boolean          NOT NULL DEFAULT false,
    device_id  text             NOT NULL DEFAULT '',
    client_id  text             NOT NULL DEFAULT '',
    acr        text             NOT NULL DEFAULT '',
    decision   text             NOT NULL DEFAULT '',
    reasons    text[]           NOT NULL DEFAULT '{}'
);
-- A user's history, newest first (and the cascade on user delete).
CREATE INDEX signin_user_id_time ON signin (user_id, time);
-- The retention sweep's age cut.
CREATE INDEX signin_time ON signin (time);

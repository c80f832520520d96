-- 0004_admin: what the admin console needs — client secret rotation and
-- per-client token lifetimes, ending one session by its public id, and
-- searching users.
--
-- Released migrations are never edited; see 0001_initial.sql for why and
-- for the conventions (STRICT tables, INTEGER unix microseconds with 0 for
-- "never", durations as INTEGER nanoseconds like client.max_auth_age).

-- Every new column has a default, so existing clients read back as before:
-- no previous secret, and 0 (the server's default) for both lifetimes.
-- previous_secret_hash is NULL when no rotation is pending;
-- previous_secret_expires_at is when the replaced secret stops working.
ALTER TABLE client ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE client ADD COLUMN previous_secret_expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE client ADD COLUMN access_token_ttl INTEGER NOT NULL DEFAULT 0;  -- nanoseconds; 0: default
ALTER TABLE client ADD COLUMN refresh_token_ttl INTEGER NOT NULL DEFAULT 0; -- nanoseconds; 0: default

-- DeleteSessionBySID looks a session up by its public id, which until now
-- only ListUserSessions returned: browser_session had indexes on user_id
-- and expires_at but none on sid. Not UNIQUE: the server draws SIDs at
-- random so they do not repeat, but the schema never promised it, and a
-- unique index could fail this migration on an existing database.
CREATE INDEX browser_session_sid ON browser_session (sid);

-- SearchUsers matches a substring anywhere in email or name (LIKE
-- '%…%'), which no B-tree index can serve: it scans and sorts user. For an
-- internal directory of thousands of users that is cheap, so no index is
-- added for it.

-- 0004_admin: what the admin console needs — client secret rotation and
-- per-client token lifetimes, ending one session by its public id.
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. Every new column has a default, so existing clients read
-- back as before.
ALTER TABLE client ADD COLUMN previous_secret_hash bytea;
ALTER TABLE client ADD COLUMN previous_secret_expires_at timestamptz;
ALTER TABLE client ADD COLUMN access_token_ttl bigint NOT NULL DEFAULT 0;  -- nanoseconds; 0: default
ALTER TABLE client ADD COLUMN refresh_token_ttl bigint NOT NULL DEFAULT 0; -- nanoseconds; 0: default

-- DeleteSessionBySID looks a session up by its public id. Not UNIQUE: the
-- server draws SIDs at random, but the schema never promised it.
CREATE INDEX browser_session_sid ON browser_session (sid);

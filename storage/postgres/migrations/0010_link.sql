-- 0010_link: single-use links mailed to users ("this wasn't me" in a
-- sign-in notice, forgot password).
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. Only a hash of a link's token is kept, as for enrolment
-- links; a link serves one purpose and names the session and device it
-- concerns, if any.
CREATE TABLE link (
    token_hash bytea       NOT NULL PRIMARY KEY,
    purpose    text        NOT NULL,
    user_id    text        NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    sid        text        NOT NULL DEFAULT '',
    device_id  text        NOT NULL DEFAULT '',
    created_at timestamptz,
    expires_at timestamptz,
    used_at    timestamptz
);
CREATE INDEX link_user_id ON link (user_id);
CREATE INDEX link_expires_at ON link (expires_at);

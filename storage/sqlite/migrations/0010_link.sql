-- 0010_link: single-use links mailed to users ("this wasn't me" in a
-- sign-in notice, forgot password).
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. Only a hash of a link's token is kept, as for enrolment
-- links; a link serves one purpose and names the session and device it
-- concerns, if any.
CREATE TABLE link (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    purpose    TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    sid        TEXT    NOT NULL DEFAULT '',
    device_id  TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL DEFAULT 0,
    used_at    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX link_user_id ON link (user_id);
CREATE INDEX link_expires_at ON link (expires_at);

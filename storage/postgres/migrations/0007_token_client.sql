-- 0007_token_client: find a client's tokens.
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. Disabling an app revokes every token it holds, in the
-- transaction of the change, so the lookup must not scan the table.
CREATE INDEX token_client_id ON token (client_id);

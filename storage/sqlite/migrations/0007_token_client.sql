-- 0007_token_client: find a client's tokens.
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. Disabling an app revokes every token it holds, and
-- rotating its secret without overlap revokes the tokens that secret
-- alone obtained, in the transaction of the change, so the lookup must not
-- scan the table under the write lock. token keeps its rowid, so a new
-- token's entry lands at the end of its client's run of the index: the
-- page it dirties is one the previous token of that client dirtied too.
CREATE INDEX token_client_id ON token (client_id);

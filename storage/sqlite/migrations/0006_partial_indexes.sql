-- 0006_partial_indexes: index only the rows that can be looked up.
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. client_credentials tokens have no subject and no browser
-- session, and system audit events name no user: indexing their empty
-- values cost every token insert about three extra WAL pages for entries
-- no query ever reads. Queries repeat the condition (… AND subject != '')
-- so SQLite knows it may use the partial index.
DROP INDEX token_subject;
CREATE INDEX token_subject ON token (subject) WHERE subject != '';
DROP INDEX token_sid;
CREATE INDEX token_sid ON token (sid) WHERE sid != '';
DROP INDEX audit_event_user_id;
CREATE INDEX audit_event_user_id ON audit_event (user_id) WHERE user_id != '';

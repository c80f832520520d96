-- 0006_partial_indexes: index only the rows that can be looked up.
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. client_credentials tokens have no subject and no browser
-- session, and system audit events name no user: their empty values are
-- never looked up. Queries repeat the condition (… AND subject <> '') so
-- the planner knows it may use the partial index.
DROP INDEX token_subject;
CREATE INDEX token_subject ON token (subject) WHERE subject <> '';
DROP INDEX token_sid;
CREATE INDEX token_sid ON token (sid) WHERE sid <> '';
DROP INDEX audit_event_user_id;
CREATE INDEX audit_event_user_id ON audit_event (user_id) WHERE user_id <> '';

-- 0008_enrolled: a user is enrolled once a second factor is confirmed.
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. Until now a password alone counted as enrolled, which left
-- a user who stopped before confirming a factor stuck: shown as enrolled,
-- their link used up, and no factor to sign in with. Users who already
-- have a confirmed authenticator app or a security key are enrolled.
ALTER TABLE user ADD COLUMN enrolled_at INTEGER NOT NULL DEFAULT 0;
UPDATE user SET enrolled_at = max(created_at, updated_at, 1)
WHERE password_hash != ''
  AND (EXISTS (SELECT 1 FROM totp_credential t WHERE t.user_id = user.id AND t.confirmed_at > 0)
    OR EXISTS (SELECT 1 FROM webauthn_credential w WHERE w.user_id = user.id));

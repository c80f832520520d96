-- 0008_enrolled: a user is enrolled once a second factor is confirmed.
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. Users who already have a confirmed authenticator app or a
-- security key are enrolled.
ALTER TABLE "user" ADD COLUMN enrolled_at timestamptz;
UPDATE "user" u SET enrolled_at = coalesce(greatest(u.created_at, u.updated_at), 'epoch'::timestamptz + interval '1 microsecond')
WHERE u.password_hash <> ''
  AND (EXISTS (SELECT 1 FROM totp_credential t WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL)
    OR EXISTS (SELECT 1 FROM webauthn_credential w WHERE w.user_id = u.id));

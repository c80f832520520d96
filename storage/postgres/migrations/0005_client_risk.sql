-- 0005_client_risk: per-app risk policy — whether a sign-in the risk
-- engine would step up is refused instead for this app.
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. The default keeps every existing app as it was (step up).
ALTER TABLE client ADD COLUMN deny_risky boolean NOT NULL DEFAULT false;

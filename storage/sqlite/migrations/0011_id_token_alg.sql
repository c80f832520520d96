-- 0011_id_token_alg: the algorithm an app's ID tokens (and back-channel
-- logout tokens) are signed with, OIDC Dynamic Client Registration's
-- id_token_signed_response_alg: 'RS256' or 'ES256'.
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. '' means RS256, so every existing app keeps the tokens
-- it had.
ALTER TABLE client ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT '';

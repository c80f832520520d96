-- 0009_groups: groups of users, who may use which app, and roles.
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. "group" is an SQL keyword, hence user_group. Memberships
-- go with their group and their user. An app's allowed groups are a JSON
-- list of group ids in client.allowed_groups, read with the client on
-- every token request; server/manage keeps them pointing at existing
-- groups. Roles replace the admin flag: admin becomes role 'admin' (the
-- old column is kept in step, unread).
CREATE TABLE user_group (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    description TEXT    NOT NULL DEFAULT '',
    min_acr     TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE group_member (
    group_id TEXT    NOT NULL REFERENCES user_group (id) ON DELETE CASCADE,
    user_id  TEXT    NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    added_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX group_member_user_id ON group_member (user_id);

ALTER TABLE client ADD COLUMN allowed_groups TEXT NOT NULL DEFAULT '[]';

ALTER TABLE user ADD COLUMN role TEXT NOT NULL DEFAULT '';
UPDATE user SET role = 'admin' WHERE admin = 1;

-- Apps may ask for the groups scope: add it to every app that offers
-- openid's scopes (new apps get it from server/manage).
UPDATE client SET scopes = json_insert(scopes, '$[#]', 'groups')
WHERE EXISTS (SELECT 1 FROM json_each(client.scopes) WHERE value = 'openid')
  AND NOT EXISTS (SELECT 1 FROM json_each(client.scopes) WHERE value = 'groups');

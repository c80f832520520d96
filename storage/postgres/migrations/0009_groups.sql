-- 0009_groups: groups of users, who may use which app, and roles.
--
-- Released migrations are never edited; see 0001_initial.sql for the
-- conventions. "group" is an SQL keyword, hence user_group. Names are
-- unique in any case (the index on lower(name)). Memberships go with their
-- group and their user. An app's allowed groups are a list of group ids in
-- client.allowed_groups. Roles replace the admin flag: admin becomes role
-- 'admin' (the old column is kept in step, unread).
CREATE TABLE user_group (
    id          text        NOT NULL PRIMARY KEY,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    min_acr     text        NOT NULL DEFAULT '',
    created_at  timestamptz,
    updated_at  timestamptz
);
CREATE UNIQUE INDEX user_group_name ON user_group (lower(name));

CREATE TABLE group_member (
    group_id text        NOT NULL REFERENCES user_group (id) ON DELETE CASCADE,
    user_id  text        NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    added_at timestamptz,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_member_user_id ON group_member (user_id);

ALTER TABLE client ADD COLUMN allowed_groups text[] NOT NULL DEFAULT '{}';

ALTER TABLE "user" ADD COLUMN role text NOT NULL DEFAULT '';
UPDATE "user" SET role = 'admin' WHERE admin;

-- Apps may ask for the groups scope: add it to every app that offers
-- openid's scopes (new apps get it from server/manage).
UPDATE client SET scopes = array_append(scopes, 'groups')
WHERE 'openid' = ANY (scopes) AND NOT 'groups' = ANY (scopes);

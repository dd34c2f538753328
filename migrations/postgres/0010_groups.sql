-- Groups of users, named by `[[policy]]` rules (docs/policy.md).

-- A group exists from its first member on and stays when the last leaves
-- (`mcpgate group list` shows it with 0 members; a rule naming it stays valid).
CREATE TABLE user_groups (
    name       TEXT    NOT NULL PRIMARY KEY,
    created_at BIGINT  NOT NULL
);

-- Who is in which group, and why: `local` (`mcpgate user group add`) or
-- `provider:<id>` (an identity provider's groups claim, replaced at each
-- sign-in through that provider). The same membership may have both.
CREATE TABLE user_group_members (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name TEXT    NOT NULL REFERENCES user_groups (name) ON DELETE CASCADE,
    source     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, group_name, source)
);

CREATE INDEX user_group_members_group_name ON user_group_members (group_name);

-- Service tokens (issue #16): the client credentials grant (RFC 6749 §4.4)
-- issues access tokens whose subject is the client itself, never a user.
-- Such a token has no user: access_tokens.user_id becomes nullable (NULL
-- for a service token). A user's tokens still go with the user (ON DELETE
-- CASCADE); a service token goes with its client.
ALTER TABLE access_tokens ALTER COLUMN user_id DROP NOT NULL;

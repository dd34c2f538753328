-- The upstream URL each user's tokens were issued for (the `resource` of
-- the authorization request, RFC 8707, was that upstream's). A token is only
-- sent to the upstream of that URL: when a reload gives the upstream another
-- URL, its connections count as not made (docs/upstream-oauth.md). Rows
-- from before this column have none and count as not made either: the user
-- connects again.
ALTER TABLE upstream_tokens ADD COLUMN url TEXT;

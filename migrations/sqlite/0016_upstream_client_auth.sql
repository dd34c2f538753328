-- How mcpgate authenticates with a client it registered at an upstream's
-- authorization server (RFC 7591 `token_endpoint_auth_method`): `none`
-- (a public client, as every row before this column) or `private_key_jwt`
-- (assertions signed with mcpgate's key, published at
-- <public_url>/oauth/jwks.json). The code exchange, every refresh and the
-- revocation at disconnect use it (docs/upstream-oauth.md).
ALTER TABLE upstream_clients ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'none';

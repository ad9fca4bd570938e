-- A site chooses how its ID tokens are signed (OpenID Connect Registration's
-- id_token_signed_response_alg): 'EdDSA' (the default) or 'RS256'.
ALTER TABLE sites ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'EdDSA';

-- Wrong second-factor codes in a row, and until when (Unix ms) the second factor is
-- locked after too many: shared by every replica, so guesses cannot be spread over them.
ALTER TABLE users ADD COLUMN totp_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_locked_until BIGINT NOT NULL DEFAULT 0;

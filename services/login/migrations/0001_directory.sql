-- The user directory and the site registry. Portable SQL: the same file runs on SQLite
-- (the default) and PostgreSQL. Times are Unix milliseconds; flags are 0/1 integers.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0,
    totp_secret TEXT,
    -- The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE sites (
    client_id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    -- SHA-256 of the site secret (256 random bits), hex.
    secret_hash TEXT NOT NULL,
    backchannel_logout_uri TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE site_uris (
    client_id TEXT NOT NULL REFERENCES sites (client_id),
    -- 'redirect' or 'post_logout'.
    kind TEXT NOT NULL,
    uri TEXT NOT NULL,
    PRIMARY KEY (client_id, kind, uri)
);

-- Keyhole metadata, PostgreSQL: the SQLite schema in PostgreSQL's types. Everything the server
-- keeps besides blobs. Signed objects are kept as the exact bytes clients sent; the server parses them only to index and to refuse garbage.

CREATE TABLE accounts (
    id            BYTEA PRIMARY KEY,          -- 16 random bytes
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,             -- Argon2id PHC string
    created_at    BIGINT NOT NULL           -- ms since the Unix epoch
);

-- Bearer credentials: only SHA-256 of the token is stored.
CREATE TABLE credentials (
    token_hash  BYTEA PRIMARY KEY,
    account_id  BYTEA NOT NULL REFERENCES accounts(id),
    kind        TEXT NOT NULL CHECK (kind IN ('device', 'camera')),
    subject     BYTEA NOT NULL,               -- device id or camera id
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX credentials_subject ON credentials(account_id, kind, subject);

CREATE TABLE rosters (
    account_id BYTEA NOT NULL REFERENCES accounts(id),
    version    BIGINT NOT NULL,
    body       BYTEA NOT NULL,
    PRIMARY KEY (account_id, version)
);

CREATE TABLE cameras (
    camera_id     BYTEA PRIMARY KEY,
    account_id    BYTEA NOT NULL REFERENCES accounts(id),
    camera_key    BYTEA NOT NULL,             -- Ed25519 public key from the registration proof
    registration  BYTEA NOT NULL,             -- the registration proof, for the owner to verify
    token_id      BYTEA NOT NULL,
    registered_at BIGINT NOT NULL
);
CREATE INDEX cameras_account ON cameras(account_id);

CREATE TABLE camera_records (
    camera_id  BYTEA NOT NULL REFERENCES cameras(camera_id),
    version    BIGINT NOT NULL,
    body       BYTEA NOT NULL,
    PRIMARY KEY (camera_id, version)
);

CREATE TABLE key_packages (
    account_id BYTEA NOT NULL REFERENCES accounts(id),
    camera_id  BYTEA NOT NULL,
    epoch      BIGINT NOT NULL,
    recipient  BYTEA NOT NULL,                -- device id, or empty for the recovery key
    body       BYTEA NOT NULL,
    PRIMARY KEY (account_id, camera_id, epoch, recipient)
);

CREATE TABLE recovery_backups (
    account_id BYTEA PRIMARY KEY REFERENCES accounts(id),
    body       BYTEA NOT NULL
);

CREATE TABLE pairing_tokens (
    token_id   BYTEA PRIMARY KEY,
    account_id BYTEA NOT NULL REFERENCES accounts(id),
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- A row exists only for a fully written, fsynced, renamed blob.
CREATE TABLE objects (
    object_id   BYTEA PRIMARY KEY,
    account_id  BYTEA NOT NULL REFERENCES accounts(id),
    camera_id   BYTEA NOT NULL REFERENCES cameras(camera_id),
    kind        BIGINT NOT NULL,
    sequence    BIGINT NOT NULL,
    epoch       BIGINT NOT NULL,
    captured_at BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    sha256      BYTEA NOT NULL,               -- of the stored bytes, for `check` and idempotency
    created_at  BIGINT NOT NULL
);
CREATE INDEX objects_camera ON objects(camera_id, sequence);

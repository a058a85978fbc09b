-- Keyhole metadata, SQLite. Everything the server keeps besides blobs. Signed objects are kept
-- as the exact bytes clients sent; the server parses them only to index and to refuse garbage.

CREATE TABLE accounts (
    id            BLOB PRIMARY KEY,          -- 16 random bytes
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,             -- Argon2id PHC string
    created_at    INTEGER NOT NULL           -- ms since the Unix epoch
);

-- Bearer credentials: only SHA-256 of the token is stored.
CREATE TABLE credentials (
    token_hash  BLOB PRIMARY KEY,
    account_id  BLOB NOT NULL REFERENCES accounts(id),
    kind        TEXT NOT NULL CHECK (kind IN ('device', 'camera')),
    subject     BLOB NOT NULL,               -- device id or camera id
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX credentials_subject ON credentials(account_id, kind, subject);

CREATE TABLE rosters (
    account_id BLOB NOT NULL REFERENCES accounts(id),
    version    INTEGER NOT NULL,
    body       BLOB NOT NULL,
    PRIMARY KEY (account_id, version)
);

CREATE TABLE cameras (
    camera_id     BLOB PRIMARY KEY,
    account_id    BLOB NOT NULL REFERENCES accounts(id),
    camera_key    BLOB NOT NULL,             -- Ed25519 public key from the registration proof
    registration  BLOB NOT NULL,             -- the registration proof, for the owner to verify
    token_id      BLOB NOT NULL,
    registered_at INTEGER NOT NULL
);
CREATE INDEX cameras_account ON cameras(account_id);

CREATE TABLE camera_records (
    camera_id  BLOB NOT NULL REFERENCES cameras(camera_id),
    version    INTEGER NOT NULL,
    body       BLOB NOT NULL,
    PRIMARY KEY (camera_id, version)
);

CREATE TABLE key_packages (
    account_id BLOB NOT NULL REFERENCES accounts(id),
    camera_id  BLOB NOT NULL,
    epoch      INTEGER NOT NULL,
    recipient  BLOB NOT NULL,                -- device id, or empty for the recovery key
    body       BLOB NOT NULL,
    PRIMARY KEY (account_id, camera_id, epoch, recipient)
);

CREATE TABLE recovery_backups (
    account_id BLOB PRIMARY KEY REFERENCES accounts(id),
    body       BLOB NOT NULL
);

CREATE TABLE pairing_tokens (
    token_id   BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts(id),
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

-- A row exists only for a fully written, fsynced, renamed blob.
CREATE TABLE objects (
    object_id   BLOB PRIMARY KEY,
    account_id  BLOB NOT NULL REFERENCES accounts(id),
    camera_id   BLOB NOT NULL REFERENCES cameras(camera_id),
    kind        INTEGER NOT NULL,
    sequence    INTEGER NOT NULL,
    epoch       INTEGER NOT NULL,
    captured_at INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    sha256      BLOB NOT NULL,               -- of the stored bytes, for `check` and idempotency
    created_at  INTEGER NOT NULL
);
CREATE INDEX objects_camera ON objects(camera_id, sequence);

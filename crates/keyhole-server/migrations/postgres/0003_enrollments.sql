-- Adding a device by approval (PROTOCOL section 14): the four messages between the joining and
-- the approving device, each written once. The server relays them and can read none of their
-- secrets: the grant is sealed to the joining device.

CREATE TABLE enrollments (
    enrollment_id BYTEA PRIMARY KEY,           -- 16 random bytes, chosen by the server
    account_id    BYTEA NOT NULL REFERENCES accounts(id),
    device_id     BYTEA NOT NULL,              -- the joining device (its credential's subject)
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    request       BYTEA NOT NULL,
    answer        BYTEA,                       -- the approving device's nonce
    reveal        BYTEA,                       -- the joining device's nonce
    grant_body    BYTEA,                       -- the sealed account key
    closed_at     BIGINT                     -- finished or cancelled
);
CREATE INDEX enrollments_account ON enrollments(account_id, closed_at, expires_at);

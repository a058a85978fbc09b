-- Adding a device by approval (PROTOCOL section 14): the four messages between the joining and
-- the approving device, each written once. The server relays them and can read none of their
-- secrets: the grant is sealed to the joining device.

CREATE TABLE enrollments (
    enrollment_id BLOB PRIMARY KEY,           -- 16 random bytes, chosen by the server
    account_id    BLOB NOT NULL REFERENCES accounts(id),
    device_id     BLOB NOT NULL,              -- the joining device (its credential's subject)
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    request       BLOB NOT NULL,
    answer        BLOB,                       -- the approving device's nonce
    reveal        BLOB,                       -- the joining device's nonce
    grant_body    BLOB,                       -- the sealed account key
    closed_at     INTEGER                     -- finished or cancelled
);
CREATE INDEX enrollments_account ON enrollments(account_id, closed_at, expires_at);

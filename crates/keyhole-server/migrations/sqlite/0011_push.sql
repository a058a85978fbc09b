-- Web Push (API.md, Push): the servers' VAPID key (RFC 8292), one row that every server sharing
-- the database signs with, and each device credential's push subscription (RFC 8030, RFC 8291),
-- which ends with the credential.
CREATE TABLE push_key (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    private_key BLOB NOT NULL
);

CREATE TABLE push_subscriptions (
    token_hash BLOB PRIMARY KEY REFERENCES credentials(token_hash),
    endpoint   TEXT NOT NULL,
    p256dh     BLOB NOT NULL,
    auth       BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

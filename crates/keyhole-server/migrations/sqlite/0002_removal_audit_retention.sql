-- Camera removal, the per-account audit log, and per-account retention.

ALTER TABLE cameras ADD COLUMN removed_at INTEGER;

-- Every key-related and device/camera change, readable by the account.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BLOB NOT NULL REFERENCES accounts(id),
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,                -- "device:<id>", "camera:<id>", "anonymous" or "server"
    action     TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_account ON audit(account_id, id);

CREATE TABLE retention (
    account_id BLOB PRIMARY KEY REFERENCES accounts(id),
    max_age_ms INTEGER,                      -- objects captured longer ago are deleted
    max_bytes  INTEGER                       -- oldest objects are deleted beyond this total
);
CREATE INDEX objects_account_age ON objects(account_id, captured_at);

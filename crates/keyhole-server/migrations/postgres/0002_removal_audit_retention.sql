-- Camera removal, the per-account audit log, and per-account retention.

ALTER TABLE cameras ADD COLUMN removed_at BIGINT;

-- Every key-related and device/camera change, readable by the account.
CREATE TABLE audit (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id BYTEA NOT NULL REFERENCES accounts(id),
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,                -- "device:<id>", "camera:<id>", "anonymous" or "server"
    action     TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_account ON audit(account_id, id);

CREATE TABLE retention (
    account_id BYTEA PRIMARY KEY REFERENCES accounts(id),
    max_age_ms BIGINT,                      -- objects captured longer ago are deleted
    max_bytes  BIGINT                       -- oldest objects are deleted beyond this total
);
CREATE INDEX objects_account_age ON objects(account_id, captured_at);

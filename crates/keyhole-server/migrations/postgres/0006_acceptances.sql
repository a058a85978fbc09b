-- Acceptance statements (PROTOCOL section 16.3): each account's signed list of the accounts whose
-- shares it accepts, kept as sent, recorded in its log. The newest one's owners are what
-- share_consents indexes: it is replaced as a whole with each version.
CREATE TABLE acceptances (
    account_id BYTEA NOT NULL REFERENCES accounts(id),
    version    BIGINT NOT NULL,
    body       BYTEA NOT NULL,
    PRIMARY KEY (account_id, version)
);

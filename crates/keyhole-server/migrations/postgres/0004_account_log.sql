-- The account log (PROTOCOL section 15): hash-chained entries signed by the account key, each
-- recording a roster, camera record or share version, appended one at a time together with the
-- statement it records. Clients verify the chain; the server only refuses appends that do not
-- extend the stored head, so two devices cannot both write the same sequence number.

CREATE TABLE log_entries (
    account_id BYTEA NOT NULL REFERENCES accounts(id),
    sequence   BIGINT NOT NULL,                  -- 1, 2, 3, ...
    hash       BYTEA NOT NULL,                   -- SHA-256 of body; the next entry names it
    body       BYTEA NOT NULL,                   -- the signed entry as the device sent it
    PRIMARY KEY (account_id, sequence)
);

-- The newest head each device says it verified, signed by that device, for the account's other
-- devices to compare (fork detection). One per device, replaced on every report.
CREATE TABLE log_heads (
    account_id BYTEA NOT NULL REFERENCES accounts(id),
    device_id  BYTEA NOT NULL,
    body       BYTEA NOT NULL,
    PRIMARY KEY (account_id, device_id)
);

-- Sharing cameras with other accounts (PROTOCOL section 17). The owner's signed share statements
-- are kept as sent; the server indexes who may view each camera, to serve members its objects,
-- records and live view. Which keys a member's devices get is the owner's devices' decision.

-- Each account's key (AIK), from its first roster, so a share statement's members can be found.
CREATE TABLE account_keys (
    account_id  BLOB PRIMARY KEY REFERENCES accounts(id),
    account_key BLOB NOT NULL UNIQUE
);

-- A member account's consent to be shared with by an owner account: only then may the owner's
-- devices read the member's roster and name it in a share.
CREATE TABLE share_consents (
    member_id BLOB NOT NULL REFERENCES accounts(id),
    owner_id  BLOB NOT NULL REFERENCES accounts(id),
    PRIMARY KEY (member_id, owner_id)
);

CREATE TABLE shares (
    camera_id BLOB NOT NULL REFERENCES cameras(camera_id),
    version   INTEGER NOT NULL,
    body      BLOB NOT NULL,
    PRIMARY KEY (camera_id, version)
);

-- The members of each camera's newest share statement.
CREATE TABLE share_members (
    camera_id  BLOB NOT NULL REFERENCES cameras(camera_id),
    member_id  BLOB NOT NULL REFERENCES accounts(id),
    expires_at INTEGER,                           -- ms; NULL: until withdrawn
    PRIMARY KEY (camera_id, member_id)
);
CREATE INDEX share_members_member ON share_members(member_id);

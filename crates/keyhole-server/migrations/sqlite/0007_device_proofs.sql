-- Device proofs (PROTOCOL section 17): challenges the server issued to enrolled devices, each
-- good for one signed request until it expires; and which device sealed each key package, the
-- only one that may replace it while it is listed.
CREATE TABLE challenges (
    challenge  BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts(id),
    device_id  BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX challenges_by_device ON challenges (account_id, device_id, expires_at);
ALTER TABLE key_packages ADD COLUMN sealer BLOB;
-- Whether a device credential was issued against the device's own key (POST /v1/login/device):
-- only such a credential, for a device the roster in force lists, acts as an enrolled device.
-- A password login's credential (0) serves joining and recovery only.
ALTER TABLE credentials ADD COLUMN by_device_key INTEGER NOT NULL DEFAULT 0;

-- Retention by the owner's signed floors (PROTOCOL section 11.5): each camera's floor versions,
-- as its devices logged them. The server deletes a camera's objects below its newest floor, and
-- nothing by its own decision: the per-account limits it applied before are gone.
DROP TABLE retention;

CREATE TABLE retention_floors (
    camera_id BLOB NOT NULL REFERENCES cameras(camera_id),
    version   INTEGER NOT NULL,
    body      BLOB NOT NULL,
    PRIMARY KEY (camera_id, version)
);

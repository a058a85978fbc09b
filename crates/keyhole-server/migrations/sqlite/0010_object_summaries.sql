-- Each object keeps its summary (PROTOCOL section 7.12: prefix, payload digest, trailer) in
-- place of a SHA-256 of its bytes: listings carry it so devices verify the camera's chain without
-- the video, and `check` re-verifies each blob against it. Empty for objects stored before.
ALTER TABLE objects ADD COLUMN summary BLOB NOT NULL DEFAULT x'';
ALTER TABLE objects DROP COLUMN sha256;

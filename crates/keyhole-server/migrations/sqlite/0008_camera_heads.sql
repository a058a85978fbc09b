-- Camera heads (PROTOCOL section 8.3): each camera's newest signed word on its chain, kept with
-- the camera's clock at signing so an older head never replaces a newer one.
ALTER TABLE cameras ADD COLUMN head BLOB;
ALTER TABLE cameras ADD COLUMN head_clock INTEGER;

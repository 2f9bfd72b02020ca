-- The Merkle tree as C2SP tlog-tiles: the tile of level `level`, index `idx` holds the hashes
-- of the tree nodes of height 8·level with indices [256·idx, 256·idx + width), concatenated
-- (width = octet_length(hashes) / 32). Full tiles (256 hashes) are written once; the rightmost
-- tile of each level grows in place. Level 0 tiles are the leaf hashes.
CREATE TABLE tiles (
    level  SMALLINT NOT NULL CHECK (level >= 0 AND level < 8),
    idx    BIGINT NOT NULL CHECK (idx >= 0),
    hashes BYTEA NOT NULL CHECK (
        octet_length(hashes) BETWEEN 32 AND 8192 AND octet_length(hashes) % 32 = 0
    ),
    PRIMARY KEY (level, idx)
);
-- Hashes do not compress: store them out of line without trying.
ALTER TABLE tiles ALTER COLUMN hashes SET STORAGE EXTERNAL;

-- The witness's own database (`ledger witness`): per witnessed log, the latest checkpoint it
-- verified and cosigned. Advanced only by compare-and-swap on (tree_size, root_hash).
CREATE TABLE witnessed_logs (
    origin     TEXT PRIMARY KEY,
    tree_size  BIGINT NOT NULL CHECK (tree_size >= 0),
    root_hash  BYTEA NOT NULL CHECK (octet_length(root_hash) = 32),
    -- The checkpoint note as verified, followed by this witness's cosignature line.
    note       TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The witness's Ed25519 key when no WITNESS_KEY_FILE is given, created on first start.
CREATE TABLE witness_key (
    id          SMALLINT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    name        TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

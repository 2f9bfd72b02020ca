-- Every verifier key that ever signed a checkpoint of this log (key rotation keeps old
-- checkpoints verifiable).
CREATE TABLE signing_keys (
    verifier_key  TEXT PRIMARY KEY,
    first_used_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Per configured witness (by its verifier key): the tree size it last cosigned, the old size
-- of the next add-checkpoint request.
CREATE TABLE witness_state (
    witness    TEXT PRIMARY KEY,
    tree_size  BIGINT NOT NULL CHECK (tree_size >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Verified witness cosignatures (C2SP cosignature/v1 signature lines) of signed checkpoints.
CREATE TABLE cosignatures (
    tree_size   BIGINT NOT NULL REFERENCES checkpoints (tree_size),
    witness     TEXT NOT NULL,
    line        TEXT NOT NULL,
    cosigned_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tree_size, witness)
);

-- The log's leaves: one per access event, in append order. `payload` is the leaf data (the
-- event JSON exactly as received); `leaf_hash` = SHA-256(0x00 || payload).
CREATE TABLE leaves (
    idx         BIGINT PRIMARY KEY CHECK (idx >= 0),
    event_id    UUID NOT NULL UNIQUE,
    leaf_hash   BYTEA NOT NULL CHECK (octet_length(leaf_hash) = 32),
    payload     TEXT NOT NULL,
    patient_ref TEXT,
    actor_id    TEXT NOT NULL,
    time        TIMESTAMPTZ NOT NULL
);
CREATE INDEX leaves_patient_ref_idx ON leaves (patient_ref, idx);
CREATE INDEX leaves_actor_id_idx ON leaves (actor_id, idx);

-- Signed checkpoints (C2SP signed notes), one per signed tree size.
CREATE TABLE checkpoints (
    tree_size BIGINT PRIMARY KEY CHECK (tree_size >= 0),
    root_hash BYTEA NOT NULL CHECK (octet_length(root_hash) = 32),
    note      TEXT NOT NULL,
    signed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The log's Ed25519 signing key, created on first start. One row.
CREATE TABLE signing_key (
    id          SMALLINT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    private_key BYTEA NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

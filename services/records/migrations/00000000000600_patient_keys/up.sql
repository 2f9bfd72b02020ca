-- Per-patient data keys (crypto-erasure). Each patient compartment has a 256-bit data key of
-- its own, created on the first write into it, stored only wrapped by the records master key
-- (AES-256-GCM, AAD "patient-key/<patient_ref>"). Erasure deletes the wrapped key and keeps the
-- row with `erased_at`, so later writes into her compartment are refused (410) rather than
-- given a new key.
CREATE TABLE patient_keys (
    patient_ref TEXT        PRIMARY KEY,
    wrapped_key BYTEA,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    erased_at   TIMESTAMPTZ,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);

-- Which key sealed a version: 0 the master key (every row written before this migration, and
-- resources in no compartment), 1 the data key of the version's `patient_ref`.
ALTER TABLE resource_versions ADD COLUMN sealed_by SMALLINT NOT NULL DEFAULT 0;

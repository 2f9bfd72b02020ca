-- Each patient's labels (her Patient resource's meta.security ActCode codes: EMP a member of
-- staff, CEL a celebrity), as records published them, newest version kept: taught to the
-- detector when they arrive and again at every start.
CREATE TABLE patient_labels (
    patient_ref text        PRIMARY KEY,
    version     bigint      NOT NULL,
    labels      text[]      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

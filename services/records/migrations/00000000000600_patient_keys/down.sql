-- Rows sealed with a patient's data key cannot be read once this table is gone.
ALTER TABLE resource_versions DROP COLUMN sealed_by;
DROP TABLE patient_keys;

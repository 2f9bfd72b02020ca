DROP INDEX IF EXISTS resources_type_patient;
DROP TABLE IF EXISTS compartments;
ALTER TABLE resource_versions DROP COLUMN IF EXISTS patient_ref;

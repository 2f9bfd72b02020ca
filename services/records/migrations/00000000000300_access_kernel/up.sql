-- The access kernel decides on each version's own compartment, and on the custodian of each
-- patient (the organisation holding her record: Patient.managingOrganization).

-- Each version keeps the compartment it was written in: vread and history decide per version.
ALTER TABLE resource_versions ADD COLUMN patient_ref TEXT;
UPDATE resource_versions v
   SET patient_ref = r.patient_ref
  FROM resources r
 WHERE r.resource_type = v.resource_type AND r.resource_id = v.resource_id;

-- One row per patient compartment known here, with its custodian. Filled when a Patient is
-- written; rows for Patients stored before this migration are filled at start from their
-- (encrypted) managingOrganization.
CREATE TABLE compartments (
    patient_ref TEXT PRIMARY KEY,
    custodian   TEXT
);
CREATE INDEX compartments_custodian ON compartments (custodian, patient_ref);
-- Searches join on the compartment and page in order.
CREATE INDEX resources_type_patient ON resources (resource_type, patient_ref, last_updated, resource_id);

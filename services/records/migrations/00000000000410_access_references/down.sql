DROP TABLE IF EXISTS access_references;
DROP TABLE IF EXISTS access_reference_sets;

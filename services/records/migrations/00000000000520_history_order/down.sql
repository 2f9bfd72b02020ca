DROP INDEX IF EXISTS resource_versions_type_history;
DROP INDEX IF EXISTS resource_versions_history;

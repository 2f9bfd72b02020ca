-- Type and system history, newest first with a keyset cursor (last_updated, type, id, version).
CREATE INDEX resource_versions_history ON resource_versions (last_updated, resource_type, resource_id, version);
CREATE INDEX resource_versions_type_history ON resource_versions (resource_type, last_updated);

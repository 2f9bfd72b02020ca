CREATE INDEX IF NOT EXISTS search_index_lookup ON search_index (resource_type, param, value);

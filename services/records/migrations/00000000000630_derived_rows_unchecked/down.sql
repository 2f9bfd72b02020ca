ALTER TABLE search_index ADD CONSTRAINT search_index_resource_type_resource_id_fkey
    FOREIGN KEY (resource_type, resource_id) REFERENCES resources (resource_type, resource_id) ON DELETE CASCADE;
ALTER TABLE access_facts ADD CONSTRAINT access_facts_resource_type_resource_id_fkey
    FOREIGN KEY (resource_type, resource_id) REFERENCES resources (resource_type, resource_id) ON DELETE CASCADE;
ALTER TABLE access_reference_sets ADD CONSTRAINT access_reference_sets_resource_type_resource_id_fkey
    FOREIGN KEY (resource_type, resource_id) REFERENCES resources (resource_type, resource_id) ON DELETE CASCADE;

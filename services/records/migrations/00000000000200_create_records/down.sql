DROP TABLE search_index;
DROP TABLE resources;
DROP TABLE resource_versions;

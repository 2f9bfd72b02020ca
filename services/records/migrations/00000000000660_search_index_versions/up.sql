-- Which version of the search index extraction (`custodian_fhir_search::index::INDEX_VERSION`)
-- the rows were rewritten for, and how far a rewrite has come: resumable, one batch per
-- transaction (see `records::reindex`).
CREATE TABLE search_index_versions (
    version      INTEGER PRIMARY KEY,
    after_type   TEXT,
    after_id     TEXT,
    completed_at TIMESTAMPTZ
);

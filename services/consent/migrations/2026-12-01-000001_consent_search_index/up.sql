-- Consent is searched by the same engine as records' resources (shared/fhir-search), which
-- reads two relations: `resources` (one row per resource, its current version) and
-- `search_index` (the values of its search parameters, rewritten with each version).
-- Consents keep their table; `resources` is a view over it.
CREATE TABLE search_index (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    param         TEXT NOT NULL,
    system        TEXT,
    value         TEXT,
    value_start   TIMESTAMPTZ,
    value_end     TIMESTAMPTZ,
    number        DOUBLE PRECISION
);
CREATE INDEX search_index_lookup ON search_index (resource_type, param, value);
-- String parameters search by prefix (LIKE 'abc%'), which needs the pattern operator class.
CREATE INDEX search_index_prefix ON search_index (resource_type, param, value text_pattern_ops);
CREATE INDEX search_index_dates ON search_index (resource_type, param, value_start, value_end);
CREATE INDEX search_index_resource ON search_index (resource_type, resource_id);
CREATE STATISTICS search_index_token (mcv, ndistinct, dependencies)
    ON resource_type, param, system, value FROM search_index;

-- The engine joins and pages on the id as text (records' ids are text).
CREATE UNIQUE INDEX consents_id_text ON consents ((id::text));
CREATE INDEX consents_page_order ON consents (last_updated, (id::text)) WHERE NOT deleted;

CREATE VIEW resources AS
SELECT 'Consent'::text AS resource_type,
       id::text        AS resource_id,
       version_id      AS version,
       patient         AS patient_ref,
       NULL::text      AS confidentiality,
       last_updated,
       deleted,
       actors
FROM consents;
-- Rows are indexed by the service at start (`store::reindex`): the values come from
-- the search parameters' FHIRPath expressions, which SQL does not evaluate.

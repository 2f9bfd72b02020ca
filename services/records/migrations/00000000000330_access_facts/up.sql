-- What consents can name about the current version of each resource in a patient compartment,
-- exactly as a read computes it (records' `InstanceFacts::of`): searches over a patient whose
-- consents depend on the data (security labels, codes, data period) decide in SQL what a read
-- by id decides in Rust. Written with each version; rows of resources stored before this
-- migration are filled at start from their (encrypted) bodies.
CREATE TABLE access_facts (
    resource_type TEXT   NOT NULL,
    resource_id   TEXT   NOT NULL,
    -- The version these facts are of: a search trusts them only for the current one.
    version       BIGINT NOT NULL,
    -- First and last instant of the data's time (min start, max end of its `date` parameter),
    -- in nanoseconds since 1970: exact, where timestamptz keeps microseconds. NULL when none.
    data_from     NUMERIC,
    data_to       NUMERIC,
    PRIMARY KEY (resource_type, resource_id),
    FOREIGN KEY (resource_type, resource_id) REFERENCES resources (resource_type, resource_id) ON DELETE CASCADE
);

-- `meta.security` codings (kind 'security') and the type's `code` parameter codings
-- (kind 'code'), a NULL system where the coding has none.
CREATE TABLE access_codings (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    system        TEXT,
    code          TEXT NOT NULL,
    FOREIGN KEY (resource_type, resource_id) REFERENCES access_facts (resource_type, resource_id) ON DELETE CASCADE
);
CREATE INDEX access_codings_resource ON access_codings (resource_type, resource_id, kind, code);
